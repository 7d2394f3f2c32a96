// Causal multi-head attention over a paged KV cache.
//
// Cache layout for one layer: (nBlocks, nKVHeads, blockSize, headDim), so the keys of
// one KV head inside a block are contiguous. A sequence's block table maps logical
// block i (positions i·blockSize ..< (i+1)·blockSize) to a physical block.

public struct PagedKVLayer {
    public let keys: UnsafeMutablePointer<Float>
    public let values: UnsafeMutablePointer<Float>
    public let blockSize: Int
    public let nKVHeads: Int
    public let headDim: Int

    public init(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
                blockSize: Int, nKVHeads: Int, headDim: Int) {
        self.keys = keys
        self.values = values
        self.blockSize = blockSize
        self.nKVHeads = nKVHeads
        self.headDim = headDim
    }

    /// Offset (in floats) of position `pos`, KV head `h`, for a block table.
    @inlinable @inline(__always)
    public func offset(position pos: Int, head h: Int, blockTable: UnsafePointer<Int32>) -> Int {
        let block = Int(blockTable[pos / blockSize])
        return ((block * nKVHeads + h) * blockSize + pos % blockSize) * headDim
    }
}

// Writes k and v rows into the cache at their positions. k,v: (T, nKVHeads, headDim);
// positions: (T).
@inlinable
public func kvCacheWrite(layer: PagedKVLayer, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         positions: UnsafePointer<Int32>, blockTable: UnsafePointer<Int32>, T: Int) {
    let hd = layer.headDim
    for t in 0..<T {
        for h in 0..<layer.nKVHeads {
            let dst = layer.offset(position: Int(positions[t]), head: h, blockTable: blockTable)
            let src = (t * layer.nKVHeads + h) * hd
            (layer.keys + dst).update(from: k + src, count: hd)
            (layer.values + dst).update(from: v + src, count: hd)
        }
    }
}

// out = softmax(q·Kᵀ·scale, causal) · V for one query head of one sequence.
// q, out: (nq, headDim) at row strides qStride/outStride; query i sits at position
// startPos + i and sees keys 0...startPos+i. scores: scratch of startPos + nq floats.
@inlinable
public func attentionForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                             q: UnsafePointer<Float>, qStride: Int,
                             layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>,
                             startPos: Int, nq: Int, scale: Float,
                             scores: UnsafeMutablePointer<Float>) {
    let hd = layer.headDim
    for i in 0..<nq {
        let qi = q + i * qStride
        let length = startPos + i + 1
        for j in 0..<length {
            let k = layer.keys + layer.offset(position: j, head: kvHead, blockTable: blockTable)
            scores[j] = dotProduct(qi, k, hd) * scale
        }
        softmaxForward(x: scores, n: length)
        let o = out + i * outStride
        o.update(repeating: 0, count: hd)
        for j in 0..<length {
            let v = layer.values + layer.offset(position: j, head: kvHead, blockTable: blockTable)
            axpy(o, scores[j], v, hd)
        }
    }
}
