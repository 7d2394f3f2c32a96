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

    /// headDim 16: eight outputs at a time; 40: one 32-wide pass and one of eight; 64:
    /// two 32-wide passes.
    @Test(arguments: [16, 40, 64], [2, 3])
    func headsTogetherMatchEachHeadAlone(headDim: Int, heads: Int) {
        // Given a cache of 37 positions and `heads` query heads sharing KV head 1
        var rng = TestRandom(seed: 17 + UInt64(headDim * heads))
        let nKVHeads = 2, blockSize = 8, nBlocks = 6, length = 37
        let cacheCount = nBlocks * nKVHeads * blockSize * headDim
        var keys = [Float](repeating: .nan, count: cacheCount)
        var values = [Float](repeating: .nan, count: cacheCount)
        let k = rng.floats(length * nKVHeads * headDim), v = rng.floats(length * nKVHeads * headDim)
        var table: [Int32] = [4, 1, 5, 0, 2]
        var positions = (0..<length).map { Int32($0) }
        let nq = 5, startPos = length - nq, width = heads * headDim
        let q = rng.floats(nq * width, scale: 2)
        var together = [Float](repeating: .nan, count: nq * width)
        var alone = [Float](repeating: .nan, count: nq * width)
        var scores = [Float](repeating: 0, count: heads * length)
        let scale = 1 / Float(headDim).squareRoot()
        keys.withUnsafeMutableBufferPointer { kp in
            values.withUnsafeMutableBufferPointer { vp in
                let layer = PagedKVLayer(keys: kp.baseAddress!, values: vp.baseAddress!,
                                         blockSize: blockSize, nKVHeads: nKVHeads, headDim: headDim)
                kvCacheWrite(layer: layer, k: k, v: v, positions: &positions, blockTable: &table, T: length)
                // When the heads attend in one call, and each head in a call of its own
                attentionForward(out: &together, outStride: width, q: q, qStride: width, heads: heads, layer: layer,
                                 kvHead: 1, blockTable: &table, startPos: startPos, nq: nq, scale: scale,
                                 scores: &scores, scoreStride: length)
                q.withUnsafeBufferPointer { qp in
                    alone.withUnsafeMutableBufferPointer { op in
                        for j in 0..<heads {
                            attentionForward(out: op.baseAddress! + j * headDim, outStride: width,
                                             q: qp.baseAddress! + j * headDim, qStride: width, layer: layer,
                                             kvHead: 1, blockTable: &table, startPos: startPos, nq: nq, scale: scale,
                                             scores: &scores)
                        }
                    }
                }
            }
        }
        // Then every head's result is bit-identical
        #expect(together == alone)
    }

    /// An f16 cache rounds each key and value once, as it is written (to nearest, ties
    /// to even), and attends in f32 over what it holds: exactly an f32 cache's attention
    /// over the same keys and values rounded to Float16 first.
    @Test(arguments: [16, 40, 64], [1, 3])
    func f16CacheEqualsF32AttentionOverRoundedKeysAndValues(headDim: Int, heads: Int) {
        // Given keys and values for 37 positions, some tiny (f16 subnormals) and some
        // exactly halfway between two halves
        var rng = TestRandom(seed: 29 + UInt64(headDim * heads))
        let nKVHeads = 2, blockSize = 8, nBlocks = 6, length = 37
        let cacheCount = nBlocks * nKVHeads * blockSize * headDim
        var k = rng.floats(length * nKVHeads * headDim, scale: 8), v = rng.floats(length * nKVHeads * headDim)
        for i in stride(from: 0, to: k.count, by: 7) { k[i] *= 1e-5 }
        for i in stride(from: 3, to: v.count, by: 11) { v[i] = 1 + 1.5 / 1024 }  // halfway: rounds to even
        let roundedK = k.map { Float(Float16($0)) }, roundedV = v.map { Float(Float16($0)) }
        var table: [Int32] = [4, 1, 5, 0, 2]
        var positions = (0..<length).map { Int32($0) }
        let nq = 5, startPos = length - nq, width = heads * headDim
        let q = rng.floats(nq * width, scale: 2)
        var scores = [Float](repeating: 0, count: heads * length)
        let scale = 1 / Float(headDim).squareRoot()
        func attend(_ precision: KVPrecision, _ k: [Float], _ v: [Float]) -> [Float] {
            var out = [Float](repeating: .nan, count: nq * width)
            let bytes = cacheCount * precision.bytesPerElement
            let keys = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            let values = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            defer { keys.deallocate(); values.deallocate() }
            keys.initializeMemory(as: UInt8.self, repeating: 0xFF, count: bytes)  // NaN wherever unwritten
            values.initializeMemory(as: UInt8.self, repeating: 0xFF, count: bytes)
            let layer = PagedKVLayer(keys: keys, values: values, precision: precision,
                                     blockSize: blockSize, nKVHeads: nKVHeads, headDim: headDim)
            kvCacheWrite(layer: layer, k: k, v: v, positions: &positions, blockTable: &table, T: length)
            attentionForward(out: &out, outStride: width, q: q, qStride: width, heads: heads, layer: layer,
                             kvHead: 1, blockTable: &table, startPos: startPos, nq: nq, scale: scale,
                             scores: &scores, scoreStride: length)
            return out
        }
        // When an f16 cache attends over them, and an f32 cache over them rounded first
        let f16 = attend(.f16, k, v), f32 = attend(.f32, roundedK, roundedV)
        // Then the results are bit-identical, and differ from exact f32 attention
        #expect(f16.map(\.bitPattern) == f32.map(\.bitPattern))
        #expect(f16 != attend(.f32, k, v))
    }
}
