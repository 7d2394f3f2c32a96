// bfloat16 is the upper half of an IEEE single, so widening is a shift
// (ggml_compute_bf16_to_fp32 / ggml_compute_fp32_to_bf16).

/// Widens bfloat16 bits to Float (exact).
@inlinable public func bf16ToFp32(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Rounds a Float to the nearest bfloat16 (ties to even) and returns its bits.
/// NaNs stay NaN: a payload living only in the dropped low bits would otherwise
/// round to infinity, so the quiet bit is forced instead.
@inlinable public func fp32ToBf16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: u >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: (u &+ (0x7FFF &+ ((u >> 16) & 1))) >> 16)
}

// Plain bfloat16 row: count values of 2 bytes each. src may be unaligned.
@inlinable public func dequantizeRowBF16(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    for i in 0..<count {
        out[i] = bf16ToFp32(src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
    }
}
