import COpenBLAS

// out = x · Wᵀ. x: (T, cols) with row stride xStride; W: (rows, cols) in any GGML type;
// out: (T, rows) with row stride outStride.
//
// Two paths, both exact f32 math on the dequantized weights:
// - few rows (decode): each weight group is decoded once into registers and dotted
//   with up to four activation rows, streaming the weights from memory once per four rows;
// - many rows (prefill): a tile of weight rows is dequantized into `scratch` and
//   multiplied with OpenBLAS sgemm, which is compute-bound and far faster there.
public enum MatMul {
    /// Activation rows at or above which the dequantize + sgemm path wins.
    public static let gemmMinRows = 16
    /// Weight rows dequantized per sgemm tile.
    public static let gemmTileRows = 256

    /// Floats of scratch `forward` needs for a weight with `cols` columns.
    public static func scratchCount(cols: Int) -> Int { gemmTileRows * cols }

    public static func forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                               x: UnsafePointer<Float>, xStride: Int, T: Int,
                               weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>) {
        if T >= gemmMinRows {
            gemmForward(out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w, scratch: scratch)
            return
        }
        switch w.type {
        case .q4_1: dotForward(Q4_1Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .q8_0: dotForward(Q8_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .q4_0: dotForward(Q4_0Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .f32: dotForward(F32Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .f16: dotForward(F16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
        case .bf16: dotForward(BF16Decoder.self, out: out, outStride: outStride, x: x, xStride: xStride, T: T, weight: w)
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
    static func dotForward<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
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

    /// acc += Σ over the group's four lanes-of-8 of w·x, with x at element `offset`.
    @inlinable @inline(__always)
    static func accumulate(_ acc: inout SIMD8<Float>, _ w: Group32, _ x: UnsafePointer<Float>, _ offset: Int) {
        let p = UnsafeRawPointer(x + offset)
        acc = acc.addingProduct(w.0, p.loadUnaligned(as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.1, p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.2, p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
        acc = acc.addingProduct(w.3, p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }

    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>,
                                          x: UnsafePointer<Float>, weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        for r in rows {
            var p = w.row(r)
            // Two accumulators over alternating groups hide the FMA latency.
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
            var g = 0
            while g + 2 <= groups {
                accumulate(&acc0, D.decode(p), x, g &* 32)
                accumulate(&acc1, D.decode(p + D.groupByteCount), x, g &* 32 &+ 32)
                p += 2 &* D.groupByteCount
                g += 2
            }
            if g < groups { accumulate(&acc0, D.decode(p), x, g &* 32) }
            out[r] = (acc0 + acc1).sum()
        }
    }

    @inlinable
    static func dotRows4<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        let xa = x, xb = x + xStride, xc = x + 2 * xStride, xd = x + 3 * xStride
        for r in rows {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            for g in 0..<groups {
                let v = D.decode(p)
                let o = g &* 32
                accumulate(&a, v, xa, o)
                accumulate(&b, v, xb, o)
                accumulate(&c, v, xc, o)
                accumulate(&d, v, xd, o)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            out[outStride + r] = b.sum()
            out[2 * outStride + r] = c.sum()
            out[3 * outStride + r] = d.sum()
        }
    }
}
