import Foundation
import Testing
import Kernels

@Suite struct AttentionTests {
    /// headDim 16 takes a two-vector pass of the weighted sum, 64 one of eight vectors.
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
        let expected = denseAttention(q: q, qStride: headDim, k: k, v: v, nKVHeads: nKVHeads, kvHead: kvHead,
                                      headDim: headDim, startPos: startPos, nq: nq, scale: scale)
        for i in 0..<(nq * headDim) { #expect(abs(Double(out[i]) - expected[i]) < 1e-5) }
    }

    /// Blocks of 32 positions as the engine's (whole and partial tiles, where the kernels
    /// take 16 positions at a time), one to three heads, both cache precisions.
    @Test(arguments: [40, 64], [1, 2, 3])
    func thirtyTwoPositionTilesMatchDenseAttentionOnEveryBuild(headDim: Int, heads: Int) {
        // Given 77 positions (tiles of 32, 32 and 13) through a scrambled block table
        var rng = TestRandom(seed: 41 + UInt64(headDim * heads))
        let nKVHeads = 2, blockSize = 32, nBlocks = 5, length = 77, kvHead = 1
        let k = rng.floats(length * nKVHeads * headDim), v = rng.floats(length * nKVHeads * headDim)
        let nq = 3, startPos = length - nq, width = heads * headDim
        let q = rng.floats(nq * width, scale: 2)
        let scale = 1 / Float(headDim).squareRoot()
        let cache = CacheShape(blockSize: blockSize, nBlocks: nBlocks, nKVHeads: nKVHeads, headDim: headDim,
                               table: [3, 0, 4], length: length)
        func attend(_ precision: KVPrecision, avx512: Bool) -> [Float] {
            defer { AttentionKernels.usesAVX512 = true }
            AttentionKernels.usesAVX512 = avx512
            return cache.attend(precision, k: k, v: v, q: q, heads: heads, kvHead: kvHead, nq: nq)
        }
        for precision in KVPrecision.allCases {
            // When each build attends (AVX-512 where the CPU has it)
            let avx2 = attend(precision, avx512: false)
            // Then every head of every query is dense attention over what the cache holds
            let held = { (x: [Float]) in precision == .f16 ? x.map { Float(Float16($0)) } : x }
            for j in 0..<heads {
                let expected = denseAttention(q: Array(q[(j * headDim)...]), qStride: width, k: held(k), v: held(v),
                                              nKVHeads: nKVHeads, kvHead: kvHead, headDim: headDim,
                                              startPos: startPos, nq: nq, scale: scale)
                for i in 0..<nq {
                    for d in 0..<headDim {
                        #expect(abs(Double(avx2[i * width + j * headDim + d]) - expected[i * headDim + d]) < 1e-5)
                    }
                }
            }
            // And the AVX-512 build gives the same floats
            if AttentionKernels.cpuHasAVX512 {
                #expect(attend(precision, avx512: true).map(\.bitPattern) == avx2.map(\.bitPattern), "\(precision)")
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
        var k = rng.floats(length * nKVHeads * headDim, scale: 8), v = rng.floats(length * nKVHeads * headDim)
        for i in stride(from: 0, to: k.count, by: 7) { k[i] *= 1e-5 }
        for i in stride(from: 3, to: v.count, by: 11) { v[i] = 1 + 1.5 / 1024 }  // halfway: rounds to even
        let roundedK = k.map { Float(Float16($0)) }, roundedV = v.map { Float(Float16($0)) }
        let nq = 5, width = heads * headDim
        let q = rng.floats(nq * width, scale: 2)
        let cache = CacheShape(blockSize: blockSize, nBlocks: nBlocks, nKVHeads: nKVHeads, headDim: headDim,
                               table: [4, 1, 5, 0, 2], length: length)
        func attend(_ precision: KVPrecision, _ k: [Float], _ v: [Float]) -> [Float] {
            cache.attend(precision, k: k, v: v, q: q, heads: heads, kvHead: 1, nq: nq)
        }
        // When an f16 cache attends over them, and an f32 cache over them rounded first
        let f16 = attend(.f16, k, v), f32 = attend(.f32, roundedK, roundedV)
        // Then the results are bit-identical, and differ from exact f32 attention
        #expect(f16.map(\.bitPattern) == f32.map(\.bitPattern))
        #expect(f16 != attend(.f32, k, v))
    }
}

/// A paged cache holding positions 0..<length of keys and values through `table`,
/// NaN in every slot they do not fill.
struct CacheShape {
    let blockSize: Int, nBlocks: Int, nKVHeads: Int, headDim: Int
    let table: [Int32]
    let length: Int

    /// The last nq positions' queries (heads per row, adjacent) attending causally,
    /// k and v: (length, nKVHeads, headDim).
    func attend(_ precision: KVPrecision, k: [Float], v: [Float], q: [Float], heads: Int, kvHead: Int,
                nq: Int) -> [Float] {
        let width = heads * headDim, startPos = length - nq
        var out = [Float](repeating: .nan, count: nq * width)
        var scores = [Float](repeating: 0, count: heads * length)
        var table = table, positions = (0..<length).map { Int32($0) }
        let bytes = nBlocks * nKVHeads * blockSize * headDim * precision.bytesPerElement
        let keys = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let values = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { keys.deallocate(); values.deallocate() }
        keys.initializeMemory(as: UInt8.self, repeating: 0xFF, count: bytes)
        values.initializeMemory(as: UInt8.self, repeating: 0xFF, count: bytes)
        let layer = PagedKVLayer(keys: keys, values: values, precision: precision,
                                 blockSize: blockSize, nKVHeads: nKVHeads, headDim: headDim)
        kvCacheWrite(layer: layer, k: k, v: v, positions: &positions, blockTable: &table, T: length)
        attentionForward(out: &out, outStride: width, q: q, qStride: width, heads: heads, layer: layer,
                         kvHead: kvHead, blockTable: &table, startPos: startPos, nq: nq,
                         scale: 1 / Float(headDim).squareRoot(), scores: &scores, scoreStride: length)
        return out
    }
}

/// softmax(q·k/√d)·v over positions 0...startPos + i for query rows i < nq, in Double;
/// k and v: (positions, nKVHeads, headDim). Rows of headDim outputs.
func denseAttention(q: [Float], qStride: Int, k: [Float], v: [Float], nKVHeads: Int, kvHead: Int, headDim: Int,
                    startPos: Int, nq: Int, scale: Float) -> [Double] {
    var out = [Double](repeating: 0, count: nq * headDim)
    for i in 0..<nq {
        let visible = startPos + i + 1
        let logits = (0..<visible).map { j in
            (0..<headDim).reduce(0.0) { $0 + Double(q[i * qStride + $1]) * Double(k[(j * nKVHeads + kvHead) * headDim + $1]) }
                * Double(scale)
        }
        let m = logits.max()!
        let weights = logits.map { exp($0 - m) }
        let total = weights.reduce(0, +)
        for d in 0..<headDim {
            for j in 0..<visible { out[i * headDim + d] += weights[j] / total * Double(v[(j * nKVHeads + kvHead) * headDim + d]) }
        }
    }
    return out
}
