import Kernels
import Testing

@Suite struct LoRATests {
    @Test(arguments: [1, 3, 17], [MatMul.Path.rowwise, .gemm])
    func loraForwardAddsScaledLowRankProduct(T: Int, path: MatMul.Path) {
        // Given a base output, inputs and random A (rank×in), B (out×rank), passed as Bᵀ
        var rng = TestRandom(seed: 21 + UInt64(T))
        let inDim = 40, outDim = 24, rank = 5, scale: Float = 1.5
        let x = rng.floats(T * inDim), a = rng.floats(rank * inDim), b = rng.floats(outDim * rank)
        let base = rng.floats(T * outDim)
        var out = base
        var shrink = [Float](repeating: 0, count: T * rank)
        let bT = (0..<(rank * outDim)).map { b[($0 % outDim) * rank + $0 / outDim] }
        // When the side path is added
        loraForward(out: &out, outStride: outDim, x: x, xStride: inDim, T: T, a: a, bT: bT,
                    rank: rank, inDim: inDim, outDim: outDim, scale: scale, shrink: &shrink, path: path)
        // Then out = base + scale · B(A x), computed naively in Double
        for t in 0..<T {
            let ax = (0..<rank).map { r in (0..<inDim).reduce(0.0) { $0 + Double(a[r * inDim + $1]) * Double(x[t * inDim + $1]) } }
            for o in 0..<outDim {
                let bax = (0..<rank).reduce(0.0) { $0 + Double(b[o * rank + $1]) * ax[$1] }
                #expect(abs(Double(out[t * outDim + o]) - (Double(base[t * outDim + o]) + Double(scale) * bax)) < 1e-4)
            }
        }
    }
}
