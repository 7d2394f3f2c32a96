import COpenBLAS

// out = x · Wᵀ. x: (T, cols) with row stride xStride; W: (rows, cols) in any GGML type;
// out: (T, rows) with row stride outStride.
//
// Two paths, both exact f32 math on the dequantized weights:
// - rowwise (decode): each weight group is decoded once into registers and dotted
//   with up to four activation rows, streaming the weights from memory once per four
//   rows. Every output element is summed in the same order whatever T is, so a row's
//   result does not depend on which other rows share the batch;
// - gemm (prefill): a tile of weight rows is dequantized into `scratch` and multiplied
//   with OpenBLAS sgemm, which is compute-bound and far faster for many rows.
public enum MatMul {
    public enum Path: Sendable {
        case rowwise, gemm

        /// The faster path for T rows, for callers that need no batch invariance.
        public static func fastest(rows T: Int) -> Path { T >= 16 ? .gemm : .rowwise }
    }

    /// Weight rows dequantized per sgemm tile.
    public static let gemmTileRows = 256

    /// Floats of scratch `forward` needs for a weight with `cols` columns.
    public static func scratchCount(cols: Int) -> Int { gemmTileRows * cols }

    public static func forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                               x: UnsafePointer<Float>, xStride: Int, T: Int,
                               weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                               path: Path? = nil) {
        guard T > 0 else { return }
        if (path ?? .fastest(rows: T)) == .gemm {
            gemmForward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w, scratch: scratch)
            return
        }
        switch w.type {
        case .q4_1: rowwiseForward(Q4_1Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .q8_0: rowwiseForward(Q8_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .q4_0: rowwiseForward(Q4_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .f32: rowwiseForward(F32Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .f16: rowwiseForward(F16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .bf16: rowwiseForward(BF16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        }
    }

    /// Dequantizes rows `rows` of `w` into `out` (row-major, `w.cols` per row).
    public static func dequantizeRows(_ w: WeightMatrix, rows: Range<Int>, out: UnsafeMutablePointer<Float>) {
        switch w.type {
        case .q4_1: decodeRows(Q4_1Decoder.self, w, rows: rows, out: out)
        case .q8_0: decodeRows(Q8_0Decoder.self, w, rows: rows, out: out)
        case .q4_0: decodeRows(Q4_0Decoder.self, w, rows: rows, out: out)
        case .f32: decodeRows(F32Decoder.self, w, rows: rows, out: out)
        case .f16: decodeRows(F16Decoder.self, w, rows: rows, out: out)
        case .bf16: decodeRows(BF16Decoder.self, w, rows: rows, out: out)
        }
    }

    static func gemmForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int, T: Int,
                            weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>) {
        var start = 0
        while start < w.rows {
            let count = min(gemmTileRows, w.rows - start)
            Parallel.forEachChunk(count, minChunk: 16) { chunk in
                dequantizeRows(w, rows: (start + chunk.lowerBound)..<(start + chunk.upperBound),
                               out: scratch + chunk.lowerBound * w.cols)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                        Int32(T), Int32(count), Int32(w.cols),
                        1, x, Int32(xStride), scratch, Int32(w.cols),
                        0, out + start, Int32(outStride))
            start += count
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
                let v = D.decode(p)
                o.storeBytes(of: v.0, as: SIMD8<Float>.self)
                (o + 32).storeBytes(of: v.1, as: SIMD8<Float>.self)
                (o + 64).storeBytes(of: v.2, as: SIMD8<Float>.self)
                (o + 96).storeBytes(of: v.3, as: SIMD8<Float>.self)
                o += 128
                p += D.groupByteCount
            }
        }
    }

    @inlinable
    static func rowwiseForward<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                                x: UnsafePointer<Float>, xStride: Int, T: Int,
                                                weight w: WeightMatrix) {
        Parallel.forEachChunk(w.rows, minChunk: 32) { rows in
            var t = 0
            while t + 8 <= T {
                dotRows8(D.self, out: out + t * outStride, outStride: outStride,
                         x: x + t * xStride, xStride: xStride, weight: w, rows: rows)
                t += 8
            }
            if t + 4 <= T {
                dotRows4(D.self, out: out + t * outStride, outStride: outStride,
                         x: x + t * xStride, xStride: xStride, weight: w, rows: rows)
                t += 4
            }
            while t < T {
                dotRows1(D.self, out: out + t * outStride, x: x + t * xStride, weight: w, rows: rows)
                t += 1
            }
        }
    }

    /// The one summation order every rowwise kernel uses for one output element: a
    /// single accumulator taking the group's four lanes-of-8 in order, group after
    /// group, reduced by .sum() at the end. Kernels get instruction-level parallelism
    /// from several output elements at once, never by splitting one element's sum.
    @inlinable @inline(__always)
    static func accumulate(_ acc: inout SIMD8<Float>, _ w: Group32, _ x: UnsafePointer<Float>, _ offset: Int) {
        let p = UnsafeRawPointer(x + offset)
        acc = acc.addingProduct(w.0, p.loadUnaligned(as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.1, p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.2, p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.3, p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }

    /// One activation row against the weight rows, four weight rows at a time so
    /// four independent FMA chains are in flight.
    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>,
                                          x: UnsafePointer<Float>, weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        let stride = w.rowByteCount
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            for g in 0..<groups {
                let o = g &* 32
                accumulate(&a, D.decode(p), x, o)
                accumulate(&b, D.decode(p + stride), x, o)
                accumulate(&c, D.decode(p + 2 &* stride), x, o)
                accumulate(&d, D.decode(p + 3 &* stride), x, o)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            out[r + 1] = b.sum()
            out[r + 2] = c.sum()
            out[r + 3] = d.sum()
            r += 4
        }
        while r < rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>()
            for g in 0..<groups {
                accumulate(&a, D.decode(p), x, g &* 32)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            r += 1
        }
    }

    /// Four activation rows against the weight rows: each weight group is decoded once.
    @inlinable
    static func dotRows4<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        let x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride
        for r in rows {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            for g in 0..<groups {
                let v = D.decode(p)
                let o = g &* 32
                accumulate(&a, v, x, o)
                accumulate(&b, v, x1, o)
                accumulate(&c, v, x2, o)
                accumulate(&d, v, x3, o)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            out[outStride + r] = b.sum()
            out[2 * outStride + r] = c.sum()
            out[3 * outStride + r] = d.sum()
        }
    }

    /// Eight activation rows against the weight rows: each weight group is decoded once
    /// for eight rows, halving the weight traffic of large decode batches.
    @inlinable
    static func dotRows8<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        let x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride
        let x4 = x + 4 * xStride, x5 = x + 5 * xStride, x6 = x + 6 * xStride, x7 = x + 7 * xStride
        for r in rows {
            var p = w.row(r)
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
            for g in 0..<groups {
                let v = D.decode(p)
                let o = g &* 32
                accumulate(&a0, v, x, o)
                accumulate(&a1, v, x1, o)
                accumulate(&a2, v, x2, o)
                accumulate(&a3, v, x3, o)
                accumulate(&a4, v, x4, o)
                accumulate(&a5, v, x5, o)
                accumulate(&a6, v, x6, o)
                accumulate(&a7, v, x7, o)
                p += D.groupByteCount
            }
            out[r] = a0.sum()
            out[outStride + r] = a1.sum()
            out[2 * outStride + r] = a2.sum()
            out[3 * outStride + r] = a3.sum()
            out[4 * outStride + r] = a4.sum()
            out[5 * outStride + r] = a5.sum()
            out[6 * outStride + r] = a6.sum()
            out[7 * outStride + r] = a7.sum()
        }
    }
}
