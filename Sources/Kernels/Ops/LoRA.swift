import COpenBLAS

// out += scale · (x · Aᵀ) · B for T rows, with B given transposed: the low-rank side
// path of one projection, added to the base projection's output (never merged into the
// shared weights). x: (T, inDim) at row stride xStride; A: (rank, inDim);
// bT: (rank, outDim); out: (T, outDim) at row stride outStride; shrink: scratch of
// T·rank floats.
// `path` as in MatMul: .rowwise sums every row alone in a fixed order (batch invariant,
// for decode rows), .gemm runs two sgemm calls (for prompt chunks).
public func loraForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                        x: UnsafePointer<Float>, xStride: Int, T: Int,
                        a: UnsafePointer<Float>, bT: UnsafePointer<Float>,
                        rank: Int, inDim: Int, outDim: Int, scale: Float,
                        shrink: UnsafeMutablePointer<Float>, path: MatMul.Path) {
    guard T > 0 else { return }
    if path == .rowwise {
        Parallel.forEachChunk(T, minChunk: 2) { rows in
            for t in rows {
                loraRowForward(out: out + t * outStride, x: x + t * xStride, a: a, bT: bT, rank: rank,
                               inDim: inDim, outDim: outDim, scale: scale, shrink: shrink + t * rank)
            }
        }
        return
    }
    // shrink = x · Aᵀ  (T, rank)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(rank), Int32(inDim),
                1, x, Int32(xStride), a, Int32(inDim), 0, shrink, Int32(rank))
    // out += scale · shrink · Bᵀᵀ  (T, outDim)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(outDim), Int32(rank),
                scale, shrink, Int32(rank), bT, Int32(outDim), 1, out, Int32(outStride))
}

// One row: s = scale · A·x, then out += Σ_r s[r]·Bᵀ[r], eight outputs at a time with r
// in order, so each output's sum never depends on other rows.
@inlinable
public func loraRowForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                           a: UnsafePointer<Float>, bT: UnsafePointer<Float>,
                           rank: Int, inDim: Int, outDim: Int, scale: Float,
                           shrink s: UnsafeMutablePointer<Float>) {
    for r in 0..<rank { s[r] = dotProduct(x, a + r * inDim, inDim) * scale }
    var o = 0
    while o + 8 <= outDim {
        var acc = SIMD8<Float>()
        for r in 0..<rank {
            acc = acc.addingProduct(UnsafeRawPointer(bT + r * outDim + o).loadUnaligned(as: SIMD8<Float>.self),
                                    SIMD8<Float>(repeating: s[r]))
        }
        let p = UnsafeMutableRawPointer(out + o)
        p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) + acc, as: SIMD8<Float>.self)
        o += 8
    }
    while o < outDim {
        var acc: Float = 0
        for r in 0..<rank { acc += bT[r * outDim + o] * s[r] }
        out[o] += acc
        o += 1
    }
}
