import Foundation
import Kernels
import Model

/// The decode step's attention alone, outside the engine: `sequences` one-row spans,
/// each at the end of a `context`-position history, through every layer. The cache's
/// blocks are dealt to the sequences in random order, as a long-running server's
/// allocator leaves them, so a sequence's tiles lie scattered over the cache; keys,
/// values and queries are random. For measuring attention changes on their own.
final class AttentionBench {
    let model: LlamaModel
    let sequences: Int, context: Int
    private let cache: KVCache
    private let tables: UnsafeMutablePointer<Int32>
    private let batch: ForwardBatch
    private let state: RunState

    init(model: LlamaModel, sequences: Int, context: Int, precision: KVPrecision) {
        (self.model, self.sequences, self.context) = (model, sequences, context)
        let c = model.config, blockSize = 16
        let blocksPerSequence = (context + blockSize - 1) / blockSize
        let cache = KVCache(config: c, nBlocks: sequences * blocksPerSequence, blockSize: blockSize, precision: precision)
        self.cache = cache
        var blocks = (0..<cache.nBlocks).map { _ in cache.allocateBlock()! }
        var generator = SystemRandomNumberGenerator()
        blocks.shuffle(using: &generator)
        tables = .allocate(capacity: blocks.count)
        tables.initialize(from: blocks, count: blocks.count)

        // Keys and values go in through the cache's own write, in its precision.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        let positions = cache.nBlocks * blockSize
        let k = UnsafeMutablePointer<Float>.allocate(capacity: positions * c.kvDim)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: positions * c.kvDim)
        let slots = UnsafeMutablePointer<Int32>.allocate(capacity: positions)
        let identity = UnsafeMutablePointer<Int32>.allocate(capacity: cache.nBlocks)
        defer { k.deallocate(); v.deallocate(); slots.deallocate(); identity.deallocate() }
        for i in 0..<positions { slots[i] = Int32(i) }
        for b in 0..<cache.nBlocks { identity[b] = Int32(b) }
        for l in 0..<c.nLayers {
            Self.fill(k, count: positions * c.kvDim, seed: &seed)
            Self.fill(v, count: positions * c.kvDim, seed: &seed)
            kvCacheWrite(layer: cache.layer(l), k: k, v: v, positions: slots, blockTable: identity, T: positions)
        }
        batch = ForwardBatch(maxRows: sequences, maxSequences: sequences)
        for i in 0..<sequences {
            batch.add(tokens: [0], startPosition: context - 1, blockTable: tables + i * blocksPerSequence, logits: .none)
        }
        state = RunState(config: c, maxRows: sequences, maxLogitRows: 1, maxContext: context)
        Self.fill(state.q, count: sequences * c.qDim, seed: &seed)
    }

    deinit { tables.deallocate() }

    /// Bytes of keys and values one step reads.
    var bytesPerStep: Int {
        sequences * context * KVCache.bytesPerPosition(config: model.config, precision: cache.precision)
    }

    /// Seconds for `steps` steps of attention over all layers.
    func measure(steps: Int) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps {
            for l in 0..<model.config.nLayers { model.attention(batch: batch, layer: cache.layer(l), state) }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Values uniform in [-1, 1) from a cheap generator (hundreds of MB to fill).
    private static func fill(_ x: UnsafeMutablePointer<Float>, count: Int, seed: inout UInt64) {
        for i in 0..<count {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            x[i] = Float(seed >> 40) / 8_388_608 - 1
        }
    }
}
