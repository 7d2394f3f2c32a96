// out = x · Wᵀ. x: (T, cols) with row stride xStride; W: (rows, cols) in any GGML type;
// out: (T, rows) with row stride outStride.
//
// Two paths, both exact f32 math on the dequantized weights (the rowwise one also has
// int16- and int8-activation variants, RowwiseInt16.swift and InterleavedInt8.swift):
// - rowwise (decode, RowwiseKernels.swift): one or a few rows decode the weight groups
//   in registers straight from memory; a batch dequantizes small tiles of weight rows
//   per thread and multiplies them in register blocks. Every output element is summed
//   in the same order whatever T is, so a row's result does not depend on which other
//   rows share the batch;
// - gemm (prompt chunks): the activation rows are packed once, then each thread
//   dequantizes tiles of weight rows into `scratch` and multiplies them in register
//   blocks that broadcast each weight to sixteen rows (RowInvariantGEMM.swift):
//   compute-bound, far faster for many rows, and each output element one chain over
//   the columns in order, so a row's result does not depend on the other rows either.
public enum MatMul {
    public enum Path: Sendable, Equatable {
        /// Weight groups decoded in registers; activations as f32, or quantized to
        /// int16 or int8 per group of 32 for quantized weights.
        case rowwise(ActivationPrecision)
        case gemm

        /// The faster exact path for T rows, for callers that need not match a row's
        /// result on the other path.
        public static func fastest(rows T: Int) -> Path { T >= 16 ? .gemm : .rowwise(.f32) }
    }

    /// How decode rows hold activations in quantized-weight products.
    public enum ActivationPrecision: String, Sendable, CaseIterable {
        /// Exact f32 math on the dequantized weights.
        case f32
        /// int16 per group of 32 with an f32 scale (relative rounding at most 1/65534 of
        /// the group's largest value), integer products: very nearly exact, faster for
        /// single rows, slower than f32's register-blocked batches.
        case int16
        /// int8 per group of 32 with an f32 scale (relative rounding at most 1/254 of the
        /// group's largest value, as llama.cpp's), for interleaved Q4_1 and Q8_0 weights
        /// (InterleavedInt8.swift); other weights keep f32. The fastest batches.
        case int8
    }

    /// Weight rows dequantized per gemm tile, per thread.
    public static let gemmTileRows = 128

    /// Floats of scratch `forward` needs for up to `rows` activation rows and a weight
    /// with `cols` columns: one weight tile per thread (both paths), then the gemm
    /// path's packed activations.
    public static func scratchCount(rows: Int, cols: Int) -> Int {
        Parallel.threadCount * gemmTileRows * cols + RowInvariantGEMM.packedCount(rows: rows, cols: cols)
    }

    /// `prefetch`: memory the rowwise kernels stream into cache as they go, for the
    /// caller's next job (Prefetch.swift); the gemm path ignores it.
    public static func forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                               x: UnsafePointer<Float>, xStride: Int, T: Int,
                               weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                               path: Path? = nil,
                               prefetch: UnsafeBufferPointer<PrefetchSpan> = .init(start: nil, count: 0)) {
        guard T > 0 else { return }
        switch path ?? .fastest(rows: T) {
        case .gemm:
            gemmForward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w, scratch: scratch)
            return
        case .rowwise(.int16) where hasInt16Kernel(w):
            rowwiseInt16Forward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w, scratch: scratch,
                                prefetch: prefetch)
            return
        case .rowwise(.int8) where w.interleaved:
            interleavedInt8Forward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w,
                                   scratch: scratch, prefetch: prefetch)
            return
        case .rowwise where w.interleaved:
            interleavedForward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w, scratch: scratch,
                               prefetch: prefetch)
            return
        case .rowwise:
            break
        }
        switch w.type {
        case .q4_1: rowwiseForward(Q4_1Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        case .q8_0: rowwiseForward(Q8_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        case .q4_0: rowwiseForward(Q4_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        case .f32: rowwiseForward(F32Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        case .f16: rowwiseForward(F16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        case .bf16: rowwiseForward(BF16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T,
                                   weight: w, scratch: scratch, prefetch: prefetch)
        }
    }

    /// Dequantizes rows `rows` of `w` into `out` (row-major, `w.cols` per row).
    public static func dequantizeRows(_ w: WeightMatrix, rows: Range<Int>, out: UnsafeMutablePointer<Float>) {
        guard !w.interleaved else { return decodeInterleavedRows(w, rows: rows, out: out) }
        switch w.type {
        case .q4_1: decodeRows(Q4_1Decoder.self, w, rows: rows, out: out)
        case .q8_0: decodeRows(Q8_0Decoder.self, w, rows: rows, out: out)
        case .q4_0: decodeRows(Q4_0Decoder.self, w, rows: rows, out: out)
        case .f32: decodeRows(F32Decoder.self, w, rows: rows, out: out)
        case .f16: decodeRows(F16Decoder.self, w, rows: rows, out: out)
        case .bf16: decodeRows(BF16Decoder.self, w, rows: rows, out: out)
        }
    }

    // x is packed once; then each thread dequantizes tiles of its own share of the
    // weight rows into its own scratch and multiplies them while they are still in that
    // core's cache.
    static func gemmForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int, T: Int,
                            weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>) {
        let packed = scratch + Parallel.threadCount * gemmTileRows * w.cols
        RowInvariantGEMM.pack(x, xStride: xStride, T: T, K: w.cols, into: packed)
        Parallel.forEachChunk(w.rows, minChunk: 32) { rows, participant in
            let tile = scratch + participant * gemmTileRows * w.cols
            var start = rows.lowerBound
            while start < rows.upperBound {
                let count = min(gemmTileRows, rows.upperBound - start)
                dequantizeRows(w, rows: start..<(start + count), out: tile)
                RowInvariantGEMM.product(out: out + start, outStride: outStride, packed: packed, T: T, K: w.cols,
                                         w: tile, rowStride: w.cols, colStride: 1, rows: 0..<count, accumulate: false)
                start += count
            }
        }
    }

    @inlinable
    static func decodeRows<D: BlockDecoder>(_: D.Type, _ w: WeightMatrix, rows: Range<Int>,
                                            out: UnsafeMutablePointer<Float>) {
        let groups = w.cols / 32
        var o = UnsafeMutableRawPointer(out)
        for r in rows {
            var p = w.row(r)
            for _ in 0..<groups {
                storeGroup(D.decode(p), at: o)
                o += 128
                p += D.groupByteCount
            }
        }
    }
}
