import CSIMD

// The rowwise path with activations quantized to int16 per group of 32 (the
// arithmetic and its order are in CSIMD's dot_i16.h). For the quantized weight
// formats only; float weights keep the f32 kernels, which are exact for them anyway.
extension MatMul {
    /// Whether `rowwiseInt16Forward` handles this matrix: the quantized types, row-major
    /// (interleaved matrices have faster exact kernels of their own).
    static func hasInt16Kernel(_ w: WeightMatrix) -> Bool {
        guard !w.interleaved else { return false }
        switch w.type {
        case .q4_0, .q4_1, .q8_0: return true
        case .f32, .f16, .bf16: return false
        }
    }

    static func rowwiseInt16Forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                                    x: UnsafePointer<Float>, xStride: Int, T: Int,
                                    weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                    prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        let groups = w.cols / 32
        // Scratch: T×groups scales, T×groups sums, then T×cols int16.
        precondition(2 * T * groups + (T * w.cols + 1) / 2 <= scratchCount(rows: T, cols: w.cols),
                     "int16 rowwise product of \(T) rows exceeds its scratch")
        let scales = scratch, sums = scratch + T * groups
        let q = UnsafeMutableRawPointer(scratch + 2 * T * groups).bindMemory(to: Int16.self, capacity: T * w.cols)
        graft_quantize_rows_i16(x, xStride, T, w.cols, q, scales, sums)
        let type = Int32(w.type.rawValue)
        Parallel.forEachChunk(w.rows, minChunk: 32) { chunk in
            withPrefetchParts(chunk, of: w.rows, prefetch) { rows, span in
                graft_dot_rows_i16(type, w.data.assumingMemoryBound(to: UInt8.self), w.rowByteCount,
                                   rows.lowerBound, rows.upperBound, w.cols, q, scales, sums, T, out, outStride,
                                   span?.start, span?.byteCount ?? 0)
            }
        }
    }
}
