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
                let (lo, hi) = D.decode(p)
                o.storeBytes(of: lo, as: SIMD16<Float>.self)
                (o + 64).storeBytes(of: hi, as: SIMD16<Float>.self)
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

    @inlinable @inline(__always)
    static func loadX(_ x: UnsafePointer<Float>, _ offset: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let p = UnsafeRawPointer(x + offset)
        return (p.loadUnaligned(as: SIMD16<Float>.self), p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
    }

    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>,
                                          x: UnsafePointer<Float>, weight w: WeightMatrix, rows: Range<Int>) {
        let groups = w.cols / 32
        for r in rows {
            var p = w.row(r)
            var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
            for g in 0..<groups {
                let (lo, hi) = D.decode(p)
                let (x0, x1) = loadX(x, g &* 32)
                acc0.addProduct(lo, x0)
                acc1.addProduct(hi, x1)
                p += D.groupByteCount
            }
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
            var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
            for g in 0..<groups {
                let (lo, hi) = D.decode(p)
                let o = g &* 32
                let (a0, a1) = loadX(xa, o); a.addProduct(lo, a0); a.addProduct(hi, a1)
                let (b0, b1) = loadX(xb, o); b.addProduct(lo, b0); b.addProduct(hi, b1)
                let (c0, c1) = loadX(xc, o); c.addProduct(lo, c0); c.addProduct(hi, c1)
                let (d0, d1) = loadX(xd, o); d.addProduct(lo, d0); d.addProduct(hi, d1)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            out[outStride + r] = b.sum()
            out[2 * outStride + r] = c.sum()
            out[3 * outStride + r] = d.sum()
        }
    }
}

extension SIMD16 where Scalar == Float {
    /// self += a * b, fused.
    @inlinable @inline(__always)
    mutating func addProduct(_ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        self = self.addingProduct(a, b)
    }
}
