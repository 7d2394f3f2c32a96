import CSIMD

// The rowwise path with activations rounded to int8 per group of 32, over interleaved
// Q4_1 and Q8_0 matrices (the arithmetic and its order are in CSIMD's interleaved_int8.h).
extension MatMul {
    static func interleavedInt8Forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                                       x: UnsafePointer<Float>, xStride: Int, T: Int,
                                       weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                       prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        precondition(graft_int8_scratch_bytes(T, w.cols) <= scratchCount(rows: T, cols: w.cols) * 4,
                     "int8 product of \(T) rows exceeds its scratch")
        graft_int8_prepare(x, xStride, T, w.cols, scratch)
        let blocks = w.rows / 8
        let weights = w.data.assumingMemoryBound(to: UInt8.self)
        Parallel.forEachChunk(blocks, minChunk: 4) { chunk in
            withPrefetchParts(chunk, of: blocks, prefetch) { part, span in
                graft_int8_dot(Int32(w.type.rawValue), weights, part.lowerBound, part.upperBound, w.cols, scratch, T,
                               out, outStride, span?.start, span?.byteCount ?? 0)
            }
        }
    }
}
