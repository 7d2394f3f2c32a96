// SIMD decoders that turn one group of 32 stored weights into four SIMD8<Float>
// (elements 0..<8, 8..<16, 16..<24, 24..<32), exactly the values the scalar reference
// dequantizers in Quant/ produce. The matmul kernels are generic over these, so each
// weight type gets its own specialised loop with no per-block type switch.
//
// Integer-to-float widening goes through CSIMD: Swift's own SIMD conversions stay
// out-of-line generic calls in these loops (measured: a third of decode time).

import CSIMD

public typealias Group32 = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

public protocol BlockDecoder {
    /// Bytes of storage per 32 elements.
    static var groupByteCount: Int { get }
    static func decode(_ p: UnsafeRawPointer) -> Group32
}

@usableFromInline @inline(__always)
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@usableFromInline @inline(__always)
func widen(_ v: SIMD8<UInt8>) -> SIMD8<Float> { graft_widen_u8x8(v) }

@usableFromInline @inline(__always)
func widen(_ v: SIMD8<Int8>) -> SIMD8<Float> { graft_widen_i8x8(v) }

/// Q4_1: f16 d @0, f16 m @2, 16 bytes of nibbles @4. Low nibbles are elements 0..<16,
/// high nibbles 16..<32.
public enum Q4_1Decoder: BlockDecoder {
    public static var groupByteCount: Int { 20 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        let m = SIMD8<Float>(repeating: loadHalf(p, 2))
        let a = p.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt8>.self)
        let b = p.loadUnaligned(fromByteOffset: 12, as: SIMD8<UInt8>.self)
        return (widen(a & 0x0F) * d + m,
                widen(b & 0x0F) * d + m,
                widen(a &>> 4) * d + m,
                widen(b &>> 4) * d + m)
    }
}

/// Q4_0: f16 d @0, 16 bytes of nibbles @2; value = (nibble - 8) * d.
public enum Q4_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 18 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        let a = p.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt8>.self)
        let b = p.loadUnaligned(fromByteOffset: 10, as: SIMD8<UInt8>.self)
        let eight = SIMD8<Float>(repeating: 8)
        return ((widen(a & 0x0F) - eight) * d, (widen(b & 0x0F) - eight) * d,
                (widen(a &>> 4) - eight) * d, (widen(b &>> 4) - eight) * d)
    }
}

/// Q8_0: f16 d @0, 32 int8 @2; value = q * d.
public enum Q8_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 34 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        return (widen(p.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int8>.self)) * d,
                widen(p.loadUnaligned(fromByteOffset: 10, as: SIMD8<Int8>.self)) * d,
                widen(p.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int8>.self)) * d,
                widen(p.loadUnaligned(fromByteOffset: 26, as: SIMD8<Int8>.self)) * d)
    }
}

public enum F32Decoder: BlockDecoder {
    public static var groupByteCount: Int { 128 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        (p.loadUnaligned(as: SIMD8<Float>.self), p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
         p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }
}

public enum F16Decoder: BlockDecoder {
    public static var groupByteCount: Int { 64 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        (SIMD8<Float>(p.loadUnaligned(as: SIMD8<Float16>.self)),
         SIMD8<Float>(p.loadUnaligned(fromByteOffset: 16, as: SIMD8<Float16>.self)),
         SIMD8<Float>(p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float16>.self)),
         SIMD8<Float>(p.loadUnaligned(fromByteOffset: 48, as: SIMD8<Float16>.self)))
    }
}

/// BF16 is the upper half of an f32: widen by shifting into the high 16 bits.
public enum BF16Decoder: BlockDecoder {
    public static var groupByteCount: Int { 64 }
    @inlinable @inline(__always)
    static func load(_ p: UnsafeRawPointer, _ offset: Int) -> SIMD8<Float> {
        let bits = SIMD8<UInt32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: offset, as: SIMD8<UInt16>.self)) &<< 16
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        (load(p, 0), load(p, 16), load(p, 32), load(p, 48))
    }
}
