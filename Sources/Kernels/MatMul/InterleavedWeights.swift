import CSIMD

// Q4_1 and Q8_0 matrices interleaved eight rows at a time, the default layout for the
// decode rows' kernels (layout and arithmetic in CSIMD's interleaved.h): the rows of a block sit in the lanes of one register, so a group's
// scale (and offset) are applied once per group instead of once per weight. Prompt
// chunks and embedding lookups decode rows from it back to the same floats as the
// row-major layout gives.
extension WeightMatrix {
    /// Whether `interleaved(into:)` applies: a row-major Q4_1 or Q8_0 matrix with rows in eights.
    public var canInterleave: Bool { graft_interleaved_supports(Int32(type.rawValue)) != 0 && rows % 8 == 0 && !interleaved }

    /// This matrix re-laid into `destination` (rows · rowByteCount bytes), as a view of it.
    public func interleaved(into destination: UnsafeMutableRawPointer) -> WeightMatrix {
        precondition(canInterleave, "only row-major Q4_1 and Q8_0 matrices with rows in eights interleave")
        graft_interleaved_pack(Int32(type.rawValue), data.assumingMemoryBound(to: UInt8.self), rows, cols,
                               destination.assumingMemoryBound(to: UInt8.self))
        return WeightMatrix(type: type, data: destination, rows: rows, cols: cols, interleaved: true)
    }
}

extension MatMul {
    /// The rowwise path over an interleaved matrix: activations prepared once into
    /// `scratch`, then blocks of eight weight rows split over the threads.
    static func interleavedForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                                   x: UnsafePointer<Float>, xStride: Int, T: Int,
                                   weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                   prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        precondition(graft_interleaved_scratch_count(T, w.cols) <= scratchCount(rows: T, cols: w.cols),
                     "interleaved product of \(T) rows exceeds its scratch")
        let type = Int32(w.type.rawValue)
        graft_interleaved_prepare(type, x, xStride, T, w.cols, scratch)
        let blocks = w.rows / 8
        let weights = w.data.assumingMemoryBound(to: UInt8.self)
        Parallel.forEachChunk(blocks, minChunk: 4) { chunk in
            withPrefetchParts(chunk, of: blocks, prefetch) { part, span in
                graft_interleaved_dot(type, weights, part.lowerBound, part.upperBound, w.cols, scratch, T, out, outStride,
                                      span?.start, span?.byteCount ?? 0)
            }
        }
    }

    /// Rows of an interleaved matrix dequantized row-major, the same values
    /// `decodeRows` gives for the row-major matrix.
    static func decodeInterleavedRows(_ w: WeightMatrix, rows: Range<Int>, out: UnsafeMutablePointer<Float>) {
        graft_interleaved_decode_rows(Int32(w.type.rawValue), w.data.assumingMemoryBound(to: UInt8.self), w.cols,
                                      rows.lowerBound, rows.upperBound, out)
    }
}
