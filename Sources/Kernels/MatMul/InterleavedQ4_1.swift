import CSIMD

// Q4_1 matrices interleaved eight rows at a time, the layout the decode rows' kernels
// read (layout and arithmetic in CSIMD's interleaved_q4_1.h): the rows of a block sit
// in the lanes of one register, so a group's scale and offset are applied once per
// group instead of once per weight. Prompt chunks decode rows from it back to floats
// for their GEMM.
extension WeightMatrix {
    /// Whether `interleaved(into:)` applies: a row-major Q4_1 matrix with rows in eights.
    public var canInterleave: Bool { type == .q4_1 && rows % 8 == 0 && !interleaved }

    /// This matrix re-laid into `destination` (rows · rowByteCount bytes), as a view of it.
    public func interleaved(into destination: UnsafeMutableRawPointer) -> WeightMatrix {
        precondition(canInterleave, "only row-major Q4_1 matrices with rows in eights interleave")
        graft_iq4_1_pack(data.assumingMemoryBound(to: UInt8.self), rows, cols, destination.assumingMemoryBound(to: UInt8.self))
        return WeightMatrix(type: .q4_1, data: destination, rows: rows, cols: cols, interleaved: true)
    }
}

extension MatMul {
    /// The rowwise path over an interleaved matrix: activations pre-scaled once into
    /// `scratch`, then blocks of eight weight rows split over the threads.
    static func interleavedForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                                   x: UnsafePointer<Float>, xStride: Int, T: Int,
                                   weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                   prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        precondition(graft_iq4_1_scratch_count(T, w.cols) <= scratchCount(rows: T, cols: w.cols),
                     "interleaved product of \(T) rows exceeds its scratch")
        graft_iq4_1_prepare(x, xStride, T, w.cols, scratch)
        let blocks = w.rows / 8
        let weights = w.data.assumingMemoryBound(to: UInt8.self)
        Parallel.forEachChunk(blocks, minChunk: 4) { chunk in
            withPrefetchParts(chunk, of: blocks, prefetch) { part, span in
                graft_iq4_1_dot(weights, part.lowerBound, part.upperBound, w.cols, scratch, T, out, outStride,
                                span?.start, span?.byteCount ?? 0)
            }
        }
    }

    /// Rows of an interleaved matrix dequantized row-major, the same values
    /// `decodeRows` gives for the row-major matrix.
    static func decodeInterleavedRows(_ w: WeightMatrix, rows: Range<Int>, out: UnsafeMutablePointer<Float>) {
        let weights = w.data.assumingMemoryBound(to: UInt8.self)
        var block = (UInt64(0), UInt64(0), UInt32(0))  // one row-major Q4_1 group, 20 bytes
        withUnsafeMutableBytes(of: &block) { block in
            let group = block.baseAddress!
            var o = UnsafeMutableRawPointer(out)
            for r in rows {
                for g in 0..<(w.cols / 32) {
                    graft_iq4_1_row_group(weights, w.cols, r, g, group.assumingMemoryBound(to: UInt8.self))
                    storeGroup(Q4_1Decoder.decode(UnsafeRawPointer(group)), at: o)
                    o += 128
                }
            }
        }
    }
}
