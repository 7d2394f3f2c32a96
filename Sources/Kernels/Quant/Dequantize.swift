// Type dispatch for the scalar dequantizers: one switch per row, never per block.

// F32 storage needs no decoding; a copy keeps the dispatch uniform. src may be unaligned.
@inlinable public func dequantizeRowF32(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: count &* 4)
}

/// Decodes `count` consecutive elements of `type` starting at `src` (a block boundary) into `out`.
/// For the block formats `count` must be a multiple of 32.
@inlinable public func dequantizeRow(type: GGMLType, out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    switch type {
    case .f32: dequantizeRowF32(out: out, src: src, count: count)
    case .f16: dequantizeRowF16(out: out, src: src, count: count)
    case .bf16: dequantizeRowBF16(out: out, src: src, count: count)
    case .q4_0: dequantizeRowQ4_0(out: out, src: src, count: count)
    case .q4_1: dequantizeRowQ4_1(out: out, src: src, count: count)
    case .q8_0: dequantizeRowQ8_0(out: out, src: src, count: count)
    }
}
