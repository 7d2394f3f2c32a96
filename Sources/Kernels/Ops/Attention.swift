// Causal multi-head attention over a paged KV cache.
//
// Cache layout for one layer: (nBlocks, nKVHeads, tile), one tile per block and KV
// head. A key tile holds its blockSize keys transposed, (headDim, blockSize), so one
// dimension of eight consecutive positions is one vector load and eight scores build
// up in the lanes of one register with no horizontal sums. A value tile is
// (blockSize, headDim), rows in position order, as the weighted sum reads them.
// A sequence's block table maps logical block i (positions i·blockSize ..<
// (i+1)·blockSize) to a physical block. Elements are f32 or f16 (KVPrecision); the
// kernels below are generic over the element and widen every load to f32, so an f16
// cache gives exactly the f32 arithmetic over keys and values rounded to f16.

public struct PagedKVLayer {
    public let keys: UnsafeMutableRawPointer
    public let values: UnsafeMutableRawPointer
    public let precision: KVPrecision
    public let blockSize: Int
    public let nKVHeads: Int
    public let headDim: Int

    public init(keys: UnsafeMutableRawPointer, values: UnsafeMutableRawPointer, precision: KVPrecision = .f32,
                blockSize: Int, nKVHeads: Int, headDim: Int) {
        precondition(blockSize % 8 == 0 && headDim % 8 == 0, "KV blocks and heads come in multiples of 8")
        self.keys = keys
        self.values = values
        self.precision = precision
        self.blockSize = blockSize
        self.nKVHeads = nKVHeads
        self.headDim = headDim
    }

    /// Offset (in elements) of the tile of physical block `block`, KV head `h`.
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
    switch layer.precision {
    case .f32: kvCacheWrite(KVFloat32.self, layer: layer, k: k, v: v, positions: positions, blockTable: blockTable, T: T)
    case .f16: kvCacheWrite(KVFloat16.self, layer: layer, k: k, v: v, positions: positions, blockTable: blockTable, T: T)
    }
}

@inlinable
func kvCacheWrite<E: KVElement>(_: E.Type, layer: PagedKVLayer, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                positions: UnsafePointer<Int32>, blockTable: UnsafePointer<Int32>, T: Int) {
    let hd = layer.headDim, bs = layer.blockSize
    for t in 0..<T {
        let pos = Int(positions[t])
        let block = blockTable[pos / bs], slot = pos % bs
        for h in 0..<layer.nKVHeads {
            let tile = layer.tileOffset(block: block, head: h)
            let src = UnsafeRawPointer(k + (t * layer.nKVHeads + h) * hd)
            let value = UnsafeRawPointer(v + (t * layer.nKVHeads + h) * hd)
            let keyColumn = layer.keys + (tile + slot) * E.bytes
            let valueRow = layer.values + (tile + slot * hd) * E.bytes
            for d in stride(from: 0, to: hd, by: 8) {
                E.scatter8(KVFloat32.load8(src + 4 * d), keyColumn + d * bs * E.bytes, stride: bs * E.bytes)
                E.store8(KVFloat32.load8(value + 4 * d), valueRow + d * E.bytes)
            }
        }
    }
}

/// Query heads of one KV head that `attentionForward` computes together at most, so
/// each key and value load serves all of them: three heads' accumulators fill the
/// sixteen vector registers.
public let attentionHeadsTogether = 3

// out = softmax(q·Kᵀ·scale, causal) · V for `heads` (1...attentionHeadsTogether)
// consecutive query heads of one sequence that share KV head `kvHead`.
// q, out: (nq, heads·headDim) at row strides qStride/outStride, head j at column
// j·headDim; query i sits at position startPos + i and sees keys 0...startPos+i.
// scores: scratch of `heads` rows of startPos + nq floats at stride scoreStride.
// Each query and head is computed alone in a fixed order, the same whichever heads
// share the call, so its result never depends on how many queries or heads share it
// (batch invariance, and chunked prefill equal to one pass).
@inlinable
public func attentionForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                             q: UnsafePointer<Float>, qStride: Int, heads: Int = 1,
                             layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>,
                             startPos: Int, nq: Int, scale: Float,
                             scores: UnsafeMutablePointer<Float>, scoreStride: Int = 0) {
    precondition((1...attentionHeadsTogether).contains(heads), "attention takes 1 to \(attentionHeadsTogether) heads at once")
    precondition(heads == 1 || scoreStride >= startPos + nq, "score rows overlap")
    switch layer.precision {
    case .f32: attentionForward(KVFloat32.self, out: out, outStride: outStride, q: q, qStride: qStride, heads: heads,
                                layer: layer, kvHead: kvHead, blockTable: blockTable, startPos: startPos, nq: nq,
                                scale: scale, scores: scores, scoreStride: scoreStride)
    case .f16: attentionForward(KVFloat16.self, out: out, outStride: outStride, q: q, qStride: qStride, heads: heads,
                                layer: layer, kvHead: kvHead, blockTable: blockTable, startPos: startPos, nq: nq,
                                scale: scale, scores: scores, scoreStride: scoreStride)
    }
}

@inlinable
func attentionForward<E: KVElement>(_: E.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                    q: UnsafePointer<Float>, qStride: Int, heads: Int,
                                    layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>,
                                    startPos: Int, nq: Int, scale: Float,
                                    scores: UnsafeMutablePointer<Float>, scoreStride: Int) {
    let bs = layer.blockSize
    for i in 0..<nq {
        let qi = q + i * qStride
        let length = startPos + i + 1
        var first = 0, b = 0
        while first < length {
            let tile = UnsafeRawPointer(layer.keys + layer.tileOffset(block: blockTable[b], head: kvHead) * E.bytes)
            let count = min(bs, length - first)
            switch heads {
            case 1: attentionScores(E.self, heads: 1, out: scores + first, scoreStride: scoreStride, q: qi, keyTile: tile,
                                    layer: layer, count: count, scale: scale)
            case 2: attentionScores(E.self, heads: 2, out: scores + first, scoreStride: scoreStride, q: qi, keyTile: tile,
                                    layer: layer, count: count, scale: scale)
            default: attentionScores(E.self, heads: 3, out: scores + first, scoreStride: scoreStride, q: qi, keyTile: tile,
                                     layer: layer, count: count, scale: scale)
            }
            first += bs
            b += 1
        }
        for j in 0..<heads { softmaxForward(x: scores + j * scoreStride, n: length) }
        switch heads {
        case 1: attentionValues(E.self, out: out + i * outStride, weights: scores, length: length,
                                layer: layer, kvHead: kvHead, blockTable: blockTable)
        case 2: attentionValues(E.self, heads: 2, out: out + i * outStride, weights: scores, weightStride: scoreStride,
                                length: length, layer: layer, kvHead: kvHead, blockTable: blockTable)
        default: attentionValues(E.self, heads: 3, out: out + i * outStride, weights: scores, weightStride: scoreStride,
                                 length: length, layer: layer, kvHead: kvHead, blockTable: blockTable)
        }
    }
}

// scores_j[s] = scale · q_j·k_s for the first `count` positions of one key tile, for
// one to three query heads (heads: a literal, folded when inlined); head j's query is
// q + j·headDim, its scores go to out + j·scoreStride. Each key vector is loaded once
// for all the heads. Each lane sums the dimensions in four interleaved partial sums
// (d mod 4), combined as (p0 + p1) + (p2 + p3): enough independent chains to keep the
// FMA units busy with one head, and the same order with any number.
@inlinable @inline(__always)
func attentionScores<E: KVElement>(_: E.Type, heads: Int, out: UnsafeMutablePointer<Float>, scoreStride: Int,
                                   q: UnsafePointer<Float>, keyTile: UnsafeRawPointer, layer: PagedKVLayer,
                                   count: Int, scale: Float) {
    let bs = layer.blockSize, hd = layer.headDim, dimBytes = bs * E.bytes
    let q0 = q, q1 = q + hd, q2 = q + 2 * hd
    var s = 0
    while s < count {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
        let column = keyTile + s * E.bytes
        var d = 0
        while d < hd {
            let k0 = E.load8(column + d * dimBytes), k1 = E.load8(column + (d + 1) * dimBytes)
            let k2 = E.load8(column + (d + 2) * dimBytes), k3 = E.load8(column + (d + 3) * dimBytes)
            a0 = a0.addingProduct(SIMD8(repeating: q0[d]), k0); a1 = a1.addingProduct(SIMD8(repeating: q0[d + 1]), k1)
            a2 = a2.addingProduct(SIMD8(repeating: q0[d + 2]), k2); a3 = a3.addingProduct(SIMD8(repeating: q0[d + 3]), k3)
            if heads > 1 {
                b0 = b0.addingProduct(SIMD8(repeating: q1[d]), k0); b1 = b1.addingProduct(SIMD8(repeating: q1[d + 1]), k1)
                b2 = b2.addingProduct(SIMD8(repeating: q1[d + 2]), k2); b3 = b3.addingProduct(SIMD8(repeating: q1[d + 3]), k3)
            }
            if heads > 2 {
                c0 = c0.addingProduct(SIMD8(repeating: q2[d]), k0); c1 = c1.addingProduct(SIMD8(repeating: q2[d + 1]), k1)
                c2 = c2.addingProduct(SIMD8(repeating: q2[d + 2]), k2); c3 = c3.addingProduct(SIMD8(repeating: q2[d + 3]), k3)
            }
            d += 4
        }
        storeScores(((a0 + a1) + (a2 + a3)) * scale, out + s, count - s)
        if heads > 1 { storeScores(((b0 + b1) + (b2 + b3)) * scale, out + scoreStride + s, count - s) }
        if heads > 2 { storeScores(((c0 + c1) + (c2 + c3)) * scale, out + 2 * scoreStride + s, count - s) }
        s += 8
    }
}

/// The first min(8, count) lanes of `lanes` at out.
@inlinable @inline(__always)
func storeScores(_ lanes: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 8 {
        UnsafeMutableRawPointer(out).storeBytes(of: lanes, as: SIMD8<Float>.self)
    } else {
        for lane in 0..<count { out[lane] = lanes[lane] }
    }
}

// out = Σ_j weights[j]·v_j over positions 0..<length, 64 outputs at a time held in
// eight registers (eight independent chains), j in order.
@inlinable
func attentionValues<E: KVElement>(_: E.Type, out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>,
                                   length: Int, layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>) {
    let bs = layer.blockSize, hd = layer.headDim, e = E.bytes
    var c = 0
    while c < hd {
        let wide = hd - c >= 64
        var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                   SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        var j = 0, b = 0
        while j < length {
            let tile = UnsafeRawPointer(layer.values + (layer.tileOffset(block: blockTable[b], head: kvHead) + c) * e)
            for slot in 0..<min(bs, length - j) {
                let w = SIMD8<Float>(repeating: weights[j + slot])
                let row = tile + slot * hd * e
                if wide {
                    acc.0 = acc.0.addingProduct(w, E.load8(row))
                    acc.1 = acc.1.addingProduct(w, E.load8(row + 8 * e))
                    acc.2 = acc.2.addingProduct(w, E.load8(row + 16 * e))
                    acc.3 = acc.3.addingProduct(w, E.load8(row + 24 * e))
                    acc.4 = acc.4.addingProduct(w, E.load8(row + 32 * e))
                    acc.5 = acc.5.addingProduct(w, E.load8(row + 40 * e))
                    acc.6 = acc.6.addingProduct(w, E.load8(row + 48 * e))
                    acc.7 = acc.7.addingProduct(w, E.load8(row + 56 * e))
                } else {
                    acc.0 = acc.0.addingProduct(w, E.load8(row))
                }
            }
            j += bs
            b += 1
        }
        storeValues(wide, (acc.0, acc.1, acc.2, acc.3), out + c)
        if wide { storeValues(true, (acc.4, acc.5, acc.6, acc.7), out + c + 32) }
        c += wide ? 64 : 8
    }
}

// The weighted sum for two or three query heads (heads: a literal, folded when
// inlined) sharing one KV head: 32 outputs of every head at a time, each value vector
// loaded once for all of them, then 8 at a time. Head j's weights are at
// weights + j·weightStride, its outputs at out + j·headDim. Every output still sums
// the positions in order in one chain, as the single-head kernel does (one head keeps
// that kernel: 64 outputs give it eight chains, where 32 would leave four).
@inlinable @inline(__always)
func attentionValues<E: KVElement>(_: E.Type, heads: Int, out: UnsafeMutablePointer<Float>,
                                   weights: UnsafePointer<Float>, weightStride: Int, length: Int,
                                   layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>) {
    let bs = layer.blockSize, hd = layer.headDim, e = E.bytes
    let w0 = weights, w1 = weights + weightStride, w2 = weights + 2 * weightStride
    var c = 0
    while c < hd {
        let wide = hd - c >= 32
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
        var j = 0, b = 0
        while j < length {
            let tile = UnsafeRawPointer(layer.values + (layer.tileOffset(block: blockTable[b], head: kvHead) + c) * e)
            for slot in 0..<min(bs, length - j) {
                let row = tile + slot * hd * e
                let x0 = SIMD8<Float>(repeating: w0[j + slot]), x1 = SIMD8<Float>(repeating: w1[j + slot])
                let x2 = heads > 2 ? SIMD8<Float>(repeating: w2[j + slot]) : SIMD8<Float>()
                let v0 = E.load8(row)
                a0 = a0.addingProduct(x0, v0); b0 = b0.addingProduct(x1, v0)
                if heads > 2 { c0 = c0.addingProduct(x2, v0) }
                if wide {
                    let v1 = E.load8(row + 8 * e), v2 = E.load8(row + 16 * e), v3 = E.load8(row + 24 * e)
                    a1 = a1.addingProduct(x0, v1); a2 = a2.addingProduct(x0, v2); a3 = a3.addingProduct(x0, v3)
                    b1 = b1.addingProduct(x1, v1); b2 = b2.addingProduct(x1, v2); b3 = b3.addingProduct(x1, v3)
                    if heads > 2 {
                        c1 = c1.addingProduct(x2, v1); c2 = c2.addingProduct(x2, v2); c3 = c3.addingProduct(x2, v3)
                    }
                }
            }
            j += bs
            b += 1
        }
        storeValues(wide, (a0, a1, a2, a3), out + c)
        storeValues(wide, (b0, b1, b2, b3), out + hd + c)
        if heads > 2 { storeValues(wide, (c0, c1, c2, c3), out + 2 * hd + c) }
        c += wide ? 32 : 8
    }
}

/// 32 outputs at out when `wide`, else the first 8.
@inlinable @inline(__always)
func storeValues(_ wide: Bool, _ acc: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>),
                 _ out: UnsafeMutablePointer<Float>) {
    let o = UnsafeMutableRawPointer(out)
    o.storeBytes(of: acc.0, as: SIMD8<Float>.self)
    guard wide else { return }
    o.storeBytes(of: acc.1, toByteOffset: 32, as: SIMD8<Float>.self)
    o.storeBytes(of: acc.2, toByteOffset: 64, as: SIMD8<Float>.self)
    o.storeBytes(of: acc.3, toByteOffset: 96, as: SIMD8<Float>.self)
}
