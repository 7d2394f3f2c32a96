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
    /// The dequantized group, exactly as the scalar reference computes it.
    static func decode(_ p: UnsafeRawPointer) -> Group32
    /// The dequantized group as the rowwise kernels use it: each weight with a single
    /// rounding (scale·q + offset as one fused multiply-add where the reference takes
    /// two steps), one instruction per eight weights fewer.
    static func weights(_ p: UnsafeRawPointer) -> Group32
}

@usableFromInline @inline(__always)
func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// Stores a decoded group's 32 floats at o (any alignment).
@usableFromInline @inline(__always)
func storeGroup(_ v: Group32, at o: UnsafeMutableRawPointer) {
    o.storeBytes(of: v.0, as: SIMD8<Float>.self)
    (o + 32).storeBytes(of: v.1, as: SIMD8<Float>.self)
    (o + 64).storeBytes(of: v.2, as: SIMD8<Float>.self)
    (o + 96).storeBytes(of: v.3, as: SIMD8<Float>.self)
}

@usableFromInline @inline(__always)
func widen(_ v: SIMD8<Int8>) -> SIMD8<Float> { graft_widen_i8x8(v) }

/// The 32 nibbles of 16 bytes at p as floats: low nibbles are elements 0..<16, high
/// nibbles 16..<32 (the Q4_0 and Q4_1 layout).
@usableFromInline @inline(__always)
func nibbleGroup(_ p: UnsafeRawPointer) -> Group32 {
    let a = graft_widen_u8x8_at(p), b = graft_widen_u8x8_at(p + 8)
    return (graft_low_nibbles(a), graft_low_nibbles(b), graft_high_nibbles(a), graft_high_nibbles(b))
}

/// Q4_1: f16 d @0, f16 m @2, 16 bytes of nibbles @4. Low nibbles are elements 0..<16,
/// high nibbles 16..<32.
public enum Q4_1Decoder: BlockDecoder {
    public static var groupByteCount: Int { 20 }
    @inlinable @inline(__always)
    static func nibbles(_ p: UnsafeRawPointer) -> Group32 { nibbleGroup(p + 4) }
    /// The scale d and offset m, each in every lane, from one 32-bit load.
    @inlinable @inline(__always)
    static func scaleAndOffset(_ p: UnsafeRawPointer) -> (d: SIMD8<Float>, m: SIMD8<Float>) {
        let dm = graft_load_f16_pair_x4(p)
        return (graft_even_lanes(dm), graft_odd_lanes(dm))
    }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let (d, m) = scaleAndOffset(p)
        let q = nibbles(p)
        return (q.0 * d + m, q.1 * d + m, q.2 * d + m, q.3 * d + m)
    }
    @inlinable @inline(__always)
    public static func weights(_ p: UnsafeRawPointer) -> Group32 {
        let (d, m) = scaleAndOffset(p)
        let q = nibbles(p)
        return (m.addingProduct(q.0, d), m.addingProduct(q.1, d), m.addingProduct(q.2, d), m.addingProduct(q.3, d))
    }
}

/// Q4_0: f16 d @0, 16 bytes of nibbles @2; value = (nibble - 8) * d.
public enum Q4_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 18 }
    @inlinable @inline(__always)
    static func nibbles(_ p: UnsafeRawPointer) -> Group32 { nibbleGroup(p + 2) }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        let eight = SIMD8<Float>(repeating: 8)
        let q = nibbles(p)
        return ((q.0 - eight) * d, (q.1 - eight) * d, (q.2 - eight) * d, (q.3 - eight) * d)
    }
    /// (q - 8)·d as fma(q, d, -8·d): the same single rounding as the reference (-8·d
    /// and q - 8 are exact).
    @inlinable @inline(__always)
    public static func weights(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        let m = -8 * d
        let q = nibbles(p)
        return (m.addingProduct(q.0, d), m.addingProduct(q.1, d), m.addingProduct(q.2, d), m.addingProduct(q.3, d))
    }
}

/// Q8_0: f16 d @0, 32 int8 @2; value = q * d.
public enum Q8_0Decoder: BlockDecoder {
    public static var groupByteCount: Int { 34 }
    @inlinable @inline(__always)
    static func values(_ p: UnsafeRawPointer) -> Group32 {
        (widen(p.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int8>.self)),
         widen(p.loadUnaligned(fromByteOffset: 10, as: SIMD8<Int8>.self)),
         widen(p.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int8>.self)),
         widen(p.loadUnaligned(fromByteOffset: 26, as: SIMD8<Int8>.self)))
    }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        let d = SIMD8<Float>(repeating: loadHalf(p, 0))
        let q = values(p)
        return (q.0 * d, q.1 * d, q.2 * d, q.3 * d)
    }
    @inlinable @inline(__always)
    public static func weights(_ p: UnsafeRawPointer) -> Group32 { decode(p) }
}

/// Float types store the values themselves, already exact.
public protocol UnscaledBlockDecoder: BlockDecoder {}

extension UnscaledBlockDecoder {
    @inlinable @inline(__always)
    public static func weights(_ p: UnsafeRawPointer) -> Group32 { decode(p) }
}

public enum F32Decoder: UnscaledBlockDecoder {
    public static var groupByteCount: Int { 128 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        (p.loadUnaligned(as: SIMD8<Float>.self), p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
         p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }
}

/// Halves widen through CSIMD's vcvtph2ps, like the adapters' f16 weights.
public enum F16Decoder: UnscaledBlockDecoder {
    public static var groupByteCount: Int { 64 }
    @inlinable @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Group32 {
        (graft_load_f16x8(p), graft_load_f16x8(p + 16), graft_load_f16x8(p + 32), graft_load_f16x8(p + 48))
    }
}

/// BF16 is the upper half of an f32: widen by shifting into the high 16 bits.
public enum BF16Decoder: UnscaledBlockDecoder {
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
