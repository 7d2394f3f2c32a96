// SIMD decoders that turn one group of 32 stored weights into two SIMD16<Float>
// halves (elements 0..<16 and 16..<32), exactly the values the scalar reference
// dequantizers in Quant/ produce. The matmul kernels are generic over these, so each
// weight type gets its own specialised loop with no per-block type switch.

public protocol BlockDecoder {
    /// Bytes of storage per 32 elements.
    static var groupByteCount: Int { get }
    static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>)
}

@usableFromInline
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// Q4_1: f16 d @0, f16 m @2, 16 bytes of nibbles @4. Low nibbles are elements 0..<16.
public enum Q4_1Decoder: BlockDecoder {
    public static var groupByteCount: Int { 20 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = SIMD16<Float>(repeating: loadHalf(p, 0))
        let m = SIMD16<Float>(repeating: loadHalf(p, 2))
        let qs = p.loadUnaligned(fromByteOffset: 4, as: SIMD16<UInt8>.self)
        let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs & 0x0F))
        let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: qs &>> 4))
        return (lo * d + m, hi * d + m)
    }
}

/// Q4_0: f16 d @0, 16 bytes of nibbles @2; value = (nibble - 8) * d.
public enum Q4_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 18 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = SIMD16<Float>(repeating: loadHalf(p, 0))
        let qs = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
        let lo = SIMD16<Int32>(truncatingIfNeeded: qs & 0x0F) &- 8
        let hi = SIMD16<Int32>(truncatingIfNeeded: qs &>> 4) &- 8
        return (SIMD16<Float>(lo) * d, SIMD16<Float>(hi) * d)
    }
}

/// Q8_0: f16 d @0, 32 int8 @2; value = q * d.
public enum Q8_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 34 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = SIMD16<Float>(repeating: loadHalf(p, 0))
        let lo = p.loadUnaligned(fromByteOffset: 2, as: SIMD16<Int8>.self)
        let hi = p.loadUnaligned(fromByteOffset: 18, as: SIMD16<Int8>.self)
        return (SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: lo)) * d,
                SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: hi)) * d)
    }
}

public enum F32Decoder: BlockDecoder {
    public static var groupByteCount: Int { 128 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        (p.loadUnaligned(as: SIMD16<Float>.self), p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
    }
}

public enum F16Decoder: BlockDecoder {
    public static var groupByteCount: Int { 64 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let lo = p.loadUnaligned(as: SIMD16<Float16>.self)
        let hi = p.loadUnaligned(fromByteOffset: 32, as: SIMD16<Float16>.self)
        return (SIMD16<Float>(lo), SIMD16<Float>(hi))
    }
}

/// BF16 is the upper half of an f32: widen by shifting into the high 16 bits.
public enum BF16Decoder: BlockDecoder {
    public static var groupByteCount: Int { 64 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let lo = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD16<UInt16>.self)) &<< 16
        let hi = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt16>.self)) &<< 16
        return (unsafeBitCast(lo, to: SIMD16<Float>.self), unsafeBitCast(hi, to: SIMD16<Float>.self))
    }
}
