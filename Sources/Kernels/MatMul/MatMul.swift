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
            while t + 4 <= T {
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

    /// The one summation order every rowwise kernel uses for one output element: two
    /// accumulators, lanes 0-7 and 16-23 of each group into `even`, 8-15 and 24-31
    /// into `odd`, reduced as (even + odd).sum(). Two chains keep FMA latency hidden.
    @inlinable @inline(__always)
    static func accumulate(_ even: inout SIMD8<Float>, _ odd: inout SIMD8<Float>,
                           _ w: Group32, _ x: UnsafePointer<Float>, _ offset: Int) {
        let p = UnsafeRawPointer(x + offset)
        even = even.addingProduct(w.0, p.loadUnaligned(as: SIMD8<Float>.self))
        odd = odd.addingProduct(w.1, p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        even = even.addingProduct(w.2, p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
        odd = odd.addingProduct(w.3, p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }

    /// One activation row against the weight rows, two weight rows at a time for
    /// more independent FMA chains.
    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>,
                                          x: UnsafePointer<Float>, weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        var r = rows.lowerBound
        while r + 2 <= rows.upperBound {
            var p = w.row(r), q = w.row(r + 1)
            var e0 = SIMD8<Float>(), o0 = SIMD8<Float>(), e1 = SIMD8<Float>(), o1 = SIMD8<Float>()
            for g in 0..<groups {
                accumulate(&e0, &o0, D.decode(p), x, g &* 32)
                accumulate(&e1, &o1, D.decode(q), x, g &* 32)
                p += D.groupByteCount
                q += D.groupByteCount
            }
            out[r] = (e0 + o0).sum()
            out[r + 1] = (e1 + o1).sum()
            r += 2
        }
        if r < rows.upperBound {
            var p = w.row(r)
            var e = SIMD8<Float>(), o = SIMD8<Float>()
            for g in 0..<groups {
                accumulate(&e, &o, D.decode(p), x, g &* 32)
                p += D.groupByteCount
            }
            out[r] = (e + o).sum()
        }
    }

    /// Four activation rows against the weight rows: each weight group is decoded once.
    @inlinable
    static func dotRows4<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        let xa = x, xb = x + xStride, xc = x + 2 * xStride, xd = x + 3 * xStride
        for r in rows {
            var p = w.row(r)
            var ae = SIMD8<Float>(), ao = SIMD8<Float>(), be = SIMD8<Float>(), bo = SIMD8<Float>()
            var ce = SIMD8<Float>(), co = SIMD8<Float>(), de = SIMD8<Float>(), do_ = SIMD8<Float>()
            for g in 0..<groups {
                let v = D.decode(p)
                let o = g &* 32
                accumulate(&ae, &ao, v, xa, o)
                accumulate(&be, &bo, v, xb, o)
                accumulate(&ce, &co, v, xc, o)
                accumulate(&de, &do_, v, xd, o)
                p += D.groupByteCount
            }
            out[r] = (ae + ao).sum()
            out[outStride + r] = (be + bo).sum()
            out[2 * outStride + r] = (ce + co).sum()
            out[3 * outStride + r] = (de + do_).sum()
        }
    }
}
