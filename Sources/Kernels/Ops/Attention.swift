// Causal multi-head attention over a paged KV cache.
//
// Cache layout for one layer: (nBlocks, nKVHeads, tile), one tile per block and KV
// head. A key tile holds its blockSize keys transposed, (headDim, blockSize), so one
// dimension of eight consecutive positions is one vector load and eight scores build
// up in the lanes of one register with no horizontal sums. A value tile is
// (blockSize, headDim), rows in position order, as the weighted sum reads them.
// A sequence's block table maps logical block i (positions i·blockSize ..<
// (i+1)·blockSize) to a physical block.

public struct PagedKVLayer {
    public let keys: UnsafeMutablePointer<Float>
    public let values: UnsafeMutablePointer<Float>
    public let blockSize: Int
    public let nKVHeads: Int
    public let headDim: Int

    public init(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
                blockSize: Int, nKVHeads: Int, headDim: Int) {
        precondition(blockSize % 8 == 0 && headDim % 8 == 0, "KV blocks and heads come in multiples of 8")
        self.keys = keys
        self.values = values
        self.blockSize = blockSize
        self.nKVHeads = nKVHeads
        self.headDim = headDim
    }

    /// Offset (in floats) of the tile of physical block `block`, KV head `h`.
    @inlinable @inline(__always)
    public func tileOffset(block: Int32, head h: Int) -> Int {
        (Int(block) * nKVHeads + h) * blockSize * headDim
    }
}

// Writes k and v rows into the cache at their positions. k,v: (T, nKVHeads, headDim);
// positions: (T).
@inlinable
public func kvCacheWrite(layer: PagedKVLayer, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         positions: UnsafePointer<Int32>, blockTable: UnsafePointer<Int32>, T: Int) {
    let hd = layer.headDim, bs = layer.blockSize
    for t in 0..<T {
        let pos = Int(positions[t])
        let block = blockTable[pos / bs], slot = pos % bs
        for h in 0..<layer.nKVHeads {
            let tile = layer.tileOffset(block: block, head: h)
            let src = (t * layer.nKVHeads + h) * hd
            let keyColumn = layer.keys + tile + slot
            for d in 0..<hd { keyColumn[d * bs] = k[src + d] }
            (layer.values + tile + slot * hd).update(from: v + src, count: hd)
        }
    }
}

// out = softmax(q·Kᵀ·scale, causal) · V for one query head of one sequence.
// q, out: (nq, headDim) at row strides qStride/outStride; query i sits at position
// startPos + i and sees keys 0...startPos+i. scores: scratch of startPos + nq floats.
// Each query is computed alone in a fixed order, so its result never depends on how
// many queries share the call (batch invariance, and chunked prefill equal to one pass).
@inlinable
public func attentionForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                             q: UnsafePointer<Float>, qStride: Int,
                             layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>,
                             startPos: Int, nq: Int, scale: Float,
                             scores: UnsafeMutablePointer<Float>) {
    let bs = layer.blockSize
    for i in 0..<nq {
        let qi = q + i * qStride
        let length = startPos + i + 1
        var first = 0, b = 0
        while first < length {
            let tile = layer.keys + layer.tileOffset(block: blockTable[b], head: kvHead)
            attentionScores(out: scores + first, q: qi, keyTile: tile, layer: layer,
                            count: min(bs, length - first), scale: scale)
            first += bs
            b += 1
        }
        softmaxForward(x: scores, n: length)
        attentionValues(out: out + i * outStride, weights: scores, length: length,
                        layer: layer, kvHead: kvHead, blockTable: blockTable)
    }
}

// scores[s] = scale · q·k_s for the first `count` positions of one key tile. Each lane
// sums the dimensions in four interleaved partial sums (d mod 4), combined as
// (p0 + p1) + (p2 + p3): enough independent chains to keep the FMA units busy.
@inlinable
func attentionScores(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, keyTile: UnsafePointer<Float>,
                     layer: PagedKVLayer, count: Int, scale: Float) {
    let bs = layer.blockSize, hd = layer.headDim
    var s = 0
    while s < count {
        var p0 = SIMD8<Float>(), p1 = SIMD8<Float>(), p2 = SIMD8<Float>(), p3 = SIMD8<Float>()
        let column = UnsafeRawPointer(keyTile + s)
        var d = 0
        while d < hd {
            p0 = p0.addingProduct(SIMD8(repeating: q[d]), column.loadUnaligned(fromByteOffset: d * bs * 4, as: SIMD8<Float>.self))
            p1 = p1.addingProduct(SIMD8(repeating: q[d + 1]), column.loadUnaligned(fromByteOffset: (d + 1) * bs * 4, as: SIMD8<Float>.self))
            p2 = p2.addingProduct(SIMD8(repeating: q[d + 2]), column.loadUnaligned(fromByteOffset: (d + 2) * bs * 4, as: SIMD8<Float>.self))
            p3 = p3.addingProduct(SIMD8(repeating: q[d + 3]), column.loadUnaligned(fromByteOffset: (d + 3) * bs * 4, as: SIMD8<Float>.self))
            d += 4
        }
        let lanes = ((p0 + p1) + (p2 + p3)) * scale
        if s + 8 <= count {
            UnsafeMutableRawPointer(out + s).storeBytes(of: lanes, as: SIMD8<Float>.self)
        } else {
            for lane in 0..<(count - s) { out[s + lane] = lanes[lane] }
        }
        s += 8
    }
}

// out = Σ_j weights[j]·v_j over positions 0..<length, 64 outputs at a time held in
// eight registers (eight independent chains), j in order.
@inlinable
func attentionValues(out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, length: Int,
                     layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>) {
    let bs = layer.blockSize, hd = layer.headDim
    var c = 0
    while c < hd {
        let wide = hd - c >= 64
        var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                   SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        var j = 0, b = 0
        while j < length {
            let tile = layer.values + layer.tileOffset(block: blockTable[b], head: kvHead) + c
            for slot in 0..<min(bs, length - j) {
                let w = SIMD8<Float>(repeating: weights[j + slot])
                let row = UnsafeRawPointer(tile + slot * hd)
                if wide {
                    acc.0 = acc.0.addingProduct(w, row.loadUnaligned(as: SIMD8<Float>.self))
                    acc.1 = acc.1.addingProduct(w, row.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                    acc.2 = acc.2.addingProduct(w, row.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                    acc.3 = acc.3.addingProduct(w, row.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                    acc.4 = acc.4.addingProduct(w, row.loadUnaligned(fromByteOffset: 128, as: SIMD8<Float>.self))
                    acc.5 = acc.5.addingProduct(w, row.loadUnaligned(fromByteOffset: 160, as: SIMD8<Float>.self))
                    acc.6 = acc.6.addingProduct(w, row.loadUnaligned(fromByteOffset: 192, as: SIMD8<Float>.self))
                    acc.7 = acc.7.addingProduct(w, row.loadUnaligned(fromByteOffset: 224, as: SIMD8<Float>.self))
                } else {
                    acc.0 = acc.0.addingProduct(w, row.loadUnaligned(as: SIMD8<Float>.self))
                }
            }
            j += bs
            b += 1
        }
        let o = UnsafeMutableRawPointer(out + c)
        if wide {
            o.storeBytes(of: acc.0, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.1, toByteOffset: 32, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.2, toByteOffset: 64, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.3, toByteOffset: 96, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.4, toByteOffset: 128, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.5, toByteOffset: 160, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.6, toByteOffset: 192, as: SIMD8<Float>.self)
            o.storeBytes(of: acc.7, toByteOffset: 224, as: SIMD8<Float>.self)
            c += 64
        } else {
            o.storeBytes(of: acc.0, as: SIMD8<Float>.self)
            c += 8
        }
    }
}
