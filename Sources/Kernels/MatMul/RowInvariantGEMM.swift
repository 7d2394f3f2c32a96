// The product for prompt chunks: out[t, n] = Σ_k x[t, k]·W[n, k] over many rows, with
// every output element one fused multiply-add chain over k in order,
//   acc = 0; for k in 0..<K { acc = fma(W[n, k], x[t, k], acc) },
// whichever rows share the call and wherever a row sits in it. OpenBLAS's sgemm, which
// this replaces, gives a row's result different last bits depending on how many rows
// are in the call and the row's place among them (measured with 128 weight rows: 2,448
// of 4,655 rows of calls of 2 to 96 rows differed from the same row in a call of 2).
// The engine cuts prompts into chunks that depend on what else runs in the step, so
// with sgemm a request's prompt cache, and at a near tie its answer, depended on the
// other requests.
//
// Layout: x is packed into panels of 8 rows, k-major within a panel (panel p holds
// x[8p + i, k] at p·8K + 8k + i), so one vector load gives eight rows' k-th column and
// each W[n, k] is broadcast to all eight. The register block is six weight rows by two
// panels: twelve accumulators, two activation vectors and one broadcast, the sixteen
// AVX registers, with twelve fused multiply-adds per eight loads.
public enum RowInvariantGEMM {
    /// Activation rows per register block (two panels of eight).
    static let blockRows = 16
    /// Weight rows per register block.
    static let blockWeights = 6

    /// Floats `pack` writes for `rows` rows of `cols` columns (rows rounded up to a block).
    public static func packedCount(rows: Int, cols: Int) -> Int {
        (rows + blockRows - 1) / blockRows * blockRows * cols
    }

    /// Packs T rows of x (K columns, row stride xStride) into panels; rows past T, up
    /// to a whole block, are zero. Parallel over panels.
    public static func pack(_ x: UnsafePointer<Float>, xStride: Int, T: Int, K: Int, into packed: UnsafeMutablePointer<Float>) {
        let panels = packedCount(rows: T, cols: K) / (8 * K)
        Parallel.forEachChunk(panels, minChunk: 1) { range in
            for p in range {
                let panel = packed + p * 8 * K
                for i in 0..<8 {
                    let t = p * 8 + i
                    guard t < T else {
                        for k in 0..<K { panel[8 * k + i] = 0 }
                        continue
                    }
                    let row = x + t * xStride
                    for k in 0..<K { panel[8 * k + i] = row[k] }
                }
            }
        }
    }

    /// out[t, n - rows.lowerBound] = (or +=, when `accumulate`) Σ_k x[t, k]·W[n, k] for t in
    /// 0..<T and n in `rows`, x packed by `pack`. W[n, k] is at w[n·rowStride + k·colStride]
    /// (a row-major W has colStride 1; a row-major Wᵀ has rowStride 1). One thread.
    public static func product(out: UnsafeMutablePointer<Float>, outStride: Int, packed: UnsafePointer<Float>,
                               T: Int, K: Int, w: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                               rows: Range<Int>, accumulate: Bool) {
        var t = 0
        while t < T {
            var n = rows.lowerBound
            while n < rows.upperBound {
                let count = min(blockWeights, rows.upperBound - n)
                block(out: out + t * outStride + (n - rows.lowerBound), outStride: outStride,
                      rowsLeft: T - t, weightsLeft: count, panels: packed + t * K, K: K,
                      w: w + n * rowStride, rowStride: rowStride, colStride: colStride, accumulate: accumulate)
                n += count
            }
            t += blockRows
        }
    }

    /// One register block: up to six weight rows by sixteen packed rows. Missing weight
    /// rows repeat the last one (computed, not stored); missing activation rows are the
    /// packing's zeros (computed, not stored).
    @inline(__always)
    static func block(out: UnsafeMutablePointer<Float>, outStride: Int, rowsLeft: Int, weightsLeft: Int,
                      panels: UnsafePointer<Float>, K: Int, w: UnsafePointer<Float>,
                      rowStride: Int, colStride: Int, accumulate: Bool) {
        let last = weightsLeft - 1
        var w0 = w, w1 = w + min(1, last) * rowStride, w2 = w + min(2, last) * rowStride
        var w3 = w + min(3, last) * rowStride, w4 = w + min(4, last) * rowStride, w5 = w + min(5, last) * rowStride
        var a = UnsafeRawPointer(panels), b = UnsafeRawPointer(panels + 8 * K)
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        for _ in 0..<K {
            let xa = a.load(as: SIMD8<Float>.self), xb = b.load(as: SIMD8<Float>.self)
            var s = SIMD8<Float>(repeating: w0.pointee)
            c00 = c00.addingProduct(s, xa); c01 = c01.addingProduct(s, xb)
            s = SIMD8<Float>(repeating: w1.pointee)
            c10 = c10.addingProduct(s, xa); c11 = c11.addingProduct(s, xb)
            s = SIMD8<Float>(repeating: w2.pointee)
            c20 = c20.addingProduct(s, xa); c21 = c21.addingProduct(s, xb)
            s = SIMD8<Float>(repeating: w3.pointee)
            c30 = c30.addingProduct(s, xa); c31 = c31.addingProduct(s, xb)
            s = SIMD8<Float>(repeating: w4.pointee)
            c40 = c40.addingProduct(s, xa); c41 = c41.addingProduct(s, xb)
            s = SIMD8<Float>(repeating: w5.pointee)
            c50 = c50.addingProduct(s, xa); c51 = c51.addingProduct(s, xb)
            a += 32; b += 32
            w0 += colStride; w1 += colStride; w2 += colStride; w3 += colStride; w4 += colStride; w5 += colStride
        }
        let columns = ((c00, c01), (c10, c11), (c20, c21), (c30, c31), (c40, c41), (c50, c51))
        withUnsafeBytes(of: columns) { raw in
            // raw: weight row j's two panels are floats 16j..<16j+16, row i of the block at 16j + i.
            let acc = raw.bindMemory(to: Float.self)
            for i in 0..<min(blockRows, rowsLeft) {
                let o = out + i * outStride
                for j in 0..<weightsLeft {
                    o[j] = accumulate ? o[j] + acc[16 * j + i] : acc[16 * j + i]
                }
            }
        }
    }
}
