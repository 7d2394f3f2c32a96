// IEEE half <-> single conversions, as ggml_fp16_to_fp32 / ggml_fp32_to_fp16.
// Swift's Float16 converts exactly (half -> single is lossless) and rounds to nearest-even
// on the way back, which is what ggml's F16C and bit-twiddling paths both do.

/// Widens the bits of an IEEE binary16 value to Float (exact, including subnormals, inf, nan).
@inlinable public func fp16ToFp32(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// Rounds a Float to the nearest binary16 (ties to even) and returns its bits.
@inlinable public func fp32ToFp16(_ x: Float) -> UInt16 {
    Float16(x).bitPattern
}

// Plain half-precision row: count values of 2 bytes each. src may be unaligned.
@inlinable public func dequantizeRowF16(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    for i in 0..<count {
        out[i] = fp16ToFp32(src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
    }
}
