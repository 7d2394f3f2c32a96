import CSIMD

// Causal multi-head attention over a paged KV cache.
//
// Cache layout for one layer: (nBlocks, nKVHeads, tile), one tile per block and KV
// head. A key tile holds its blockSize keys transposed, (headDim, blockSize), so one
// dimension of eight consecutive positions is one vector load and eight scores build
// up in the lanes of one register with no horizontal sums. A value tile is
// (blockSize, headDim), rows in position order, as the weighted sum reads them.
// A sequence's block table maps logical block i (positions i·blockSize ..<
// (i+1)·blockSize) to a physical block. Elements are f32 or f16 (KVPrecision); the
// attention kernels (CSIMD's attention.c) widen every load to f32, so an f16 cache
// gives exactly the f32 arithmetic over keys and values rounded to f16.

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
                E.scatter8(src.loadUnaligned(fromByteOffset: 4 * d, as: SIMD8<Float>.self), keyColumn + d * bs * E.bytes,
                           stride: bs * E.bytes)
                E.store8(value.loadUnaligned(fromByteOffset: 4 * d, as: SIMD8<Float>.self), valueRow + d * E.bytes)
            }
        }
    }
}

/// Which build of CSIMD's attention kernels runs: AVX-512's (32 registers, where the CPU
/// has AVX512-F and AVX512-VL) or AVX2's. Both give the same results (attention.h).
public enum AttentionKernels {
    public static var cpuHasAVX512: Bool { graft_attention_has_avx512() != 0 }

    /// Setting true on a CPU without AVX-512 leaves it off. For tests and benchmarks
    /// comparing the two builds.
    public static var usesAVX512: Bool {
        get { graft_attention_avx512() != 0 }
        set { graft_attention_set_avx512(newValue ? 1 : 0) }
    }
}

/// Query heads of one KV head that `attentionForward` computes together at most, so
/// each key and value load serves all of them (CSIMD's attention.h).
public let attentionHeadsTogether = Int(GRAFT_ATTENTION_MAX_HEADS)

// out = softmax(q·Kᵀ·scale, causal) · V for `heads` (1...attentionHeadsTogether)
// consecutive query heads of one sequence that share KV head `kvHead`.
// q, out: (nq, heads·headDim) at row strides qStride/outStride, head j at column
// j·headDim; query i sits at position startPos + i and sees keys 0...startPos+i.
// scores: scratch of `heads` rows of startPos + nq floats at stride scoreStride.
// Each query and head is computed alone in a fixed order, the same whichever heads
// share the call (attention.h), so its result never depends on how many queries or
// heads share it (batch invariance, and chunked prefill equal to one pass).
@inlinable
public func attentionForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                             q: UnsafePointer<Float>, qStride: Int, heads: Int = 1,
                             layer: PagedKVLayer, kvHead: Int, blockTable: UnsafePointer<Int32>,
                             startPos: Int, nq: Int, scale: Float,
                             scores: UnsafeMutablePointer<Float>, scoreStride: Int = 0) {
    precondition((1...attentionHeadsTogether).contains(heads), "attention takes 1 to \(attentionHeadsTogether) heads at once")
    precondition(heads == 1 || scoreStride >= startPos + nq, "score rows overlap")
    let bs = layer.blockSize, hd = layer.headDim, f16: Int32 = layer.precision == .f16 ? 1 : 0
    for i in 0..<nq {
        let length = startPos + i + 1
        graft_attention_scores(Int32(heads), f16, q + i * qStride, hd, layer.keys, blockTable, layer.nKVHeads, kvHead,
                               bs, length, scale, scores, scoreStride)
        for j in 0..<heads { softmaxForward(x: scores + j * scoreStride, n: length) }
        graft_attention_values(Int32(heads), f16, scores, scoreStride, length, layer.values, blockTable,
                               layer.nKVHeads, kvHead, bs, hd, out + i * outStride)
    }
}
