import Foundation
import Testing
import Kernels

@Suite struct AttentionTests {
    /// headDim 16 takes the eight-wide weighted sum, 64 the register-blocked one.
    @Test(arguments: [16, 64])
    func pagedAttentionMatchesDenseCausalAttention(headDim: Int) {
        // Given keys/values for 45 positions written through a scrambled block table
        var rng = TestRandom(seed: 5)
        let nKVHeads = 2, blockSize = 8, nBlocks = 8, length = 45
        let cacheCount = nBlocks * nKVHeads * blockSize * headDim
        var keys = [Float](repeating: .nan, count: cacheCount)
        var values = [Float](repeating: .nan, count: cacheCount)
        let k = rng.floats(length * nKVHeads * headDim), v = rng.floats(length * nKVHeads * headDim)
        var table: [Int32] = [5, 2, 7, 0, 3, 6]
        var positions = (0..<length).map { Int32($0) }
        let nq = 13, startPos = length - nq
        let q = rng.floats(nq * headDim, scale: 2)
        var out = [Float](repeating: 0, count: nq * headDim)
        var scores = [Float](repeating: 0, count: length)
        let kvHead = 1, scale = 1 / Float(headDim).squareRoot()
        keys.withUnsafeMutableBufferPointer { kp in
            values.withUnsafeMutableBufferPointer { vp in
                let layer = PagedKVLayer(keys: kp.baseAddress!, values: vp.baseAddress!,
                                         blockSize: blockSize, nKVHeads: nKVHeads, headDim: headDim)
                kvCacheWrite(layer: layer, k: k, v: v, positions: &positions, blockTable: &table, T: length)
                // When the last nq positions attend causally
                attentionForward(out: &out, outStride: headDim, q: q, qStride: headDim, layer: layer,
                                 kvHead: kvHead, blockTable: &table, startPos: startPos, nq: nq,
                                 scale: scale, scores: &scores)
            }
        }
        // Then each query row equals dense softmax(q·k/√d)·v over positions 0...its own
        for i in 0..<nq {
            let visible = startPos + i + 1
            var logits = [Double]()
            for j in 0..<visible {
                var dot = 0.0
                for d in 0..<headDim { dot += Double(q[i * headDim + d]) * Double(k[(j * nKVHeads + kvHead) * headDim + d]) }
                logits.append(dot * Double(scale))
            }
            let m = logits.max()!
            let weights = logits.map { exp($0 - m) }
            let total = weights.reduce(0, +)
            for d in 0..<headDim {
                var expected = 0.0
                for j in 0..<visible { expected += weights[j] / total * Double(v[(j * nKVHeads + kvHead) * headDim + d]) }
                #expect(abs(Double(out[i * headDim + d]) - expected) < 1e-5)
            }
        }
    }
}
