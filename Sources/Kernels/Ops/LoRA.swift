import COpenBLAS

// out += scale · (x · Aᵀ) · Bᵀ for T rows: the low-rank side path of one projection,
// added to the base projection's output (never merged into the shared weights).
// x: (T, inDim) at row stride xStride; A: (rank, inDim); B: (outDim, rank);
// out: (T, outDim) at row stride outStride; shrink: scratch of T·rank floats.
// `path` as in MatMul: .rowwise sums every row alone in a fixed order (batch
// invariant, for decode rows), .gemm runs two sgemm calls (for prompt chunks).
public func loraForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                        x: UnsafePointer<Float>, xStride: Int, T: Int,
                        a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                        rank: Int, inDim: Int, outDim: Int, scale: Float,
                        shrink: UnsafeMutablePointer<Float>, path: MatMul.Path) {
    guard T > 0 else { return }
    if path == .rowwise {
        for t in 0..<T {
            let xt = x + t * xStride, st = shrink + t * rank, ot = out + t * outStride
            for r in 0..<rank { st[r] = dotProduct(xt, a + r * inDim, inDim) * scale }
            Parallel.forEachChunk(outDim, minChunk: 64) { range in
                for o in range { ot[o] += dotProduct(b + o * rank, st, rank) }
            }
        }
        return
    }
    // shrink = x · Aᵀ  (T, rank)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(rank), Int32(inDim),
                1, x, Int32(xStride), a, Int32(inDim), 0, shrink, Int32(rank))
    // out += scale · shrink · Bᵀ  (T, outDim)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(outDim), Int32(rank),
                scale, shrink, Int32(rank), b, Int32(rank), 1, out, Int32(outStride))
}
