import Adapters
import Foundation
import Kernels
import Model

/// One decode step outside the engine (no scheduling, sampling or streaming):
/// one-row spans, sequence i at the end of a `contexts[i]`-position history, through
/// every layer, either the whole forward pass with every row's logits or its attention
/// alone. The cache's blocks are dealt to the sequences in random order, as a
/// long-running server's allocator leaves them, so a sequence's tiles lie scattered
/// over the cache; keys, values and queries are random. For measuring changes to the
/// step, or to attention, on their own.
final class DecodeStepBench {
    let model: LlamaModel
    let contexts: [Int]
    var sequences: Int { contexts.count }
    private let cache: KVCache
    private let tables: UnsafeMutablePointer<Int32>
    private let batch: ForwardBatch
    private let state: RunState

    /// Sequence i applies adapters[i % adapters.count], or none when `adapters` is empty.
    init(model: LlamaModel, contexts: [Int], precision: KVPrecision, adapters: [LoRAAdapter] = []) {
        (self.model, self.contexts) = (model, contexts)
        let c = model.config, blockSize = KVCache.defaultBlockSize
        let blockCounts = contexts.map { ($0 + blockSize - 1) / blockSize }
        let cache = KVCache(config: c, nBlocks: blockCounts.reduce(0, +), blockSize: blockSize, precision: precision)
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
        let sequences = contexts.count
        batch = ForwardBatch(maxRows: sequences, maxSequences: sequences)
        var table = UnsafePointer(tables)
        for (i, context) in contexts.enumerated() {
            batch.add(tokens: [Int32(i)], startPosition: context - 1, blockTable: table,
                      logits: .last, adapter: adapters.isEmpty ? nil : adapters[i % adapters.count])
            table += blockCounts[i]
        }
        state = RunState(config: c, maxRows: sequences, maxLogitRows: sequences, maxContext: contexts.max()!)
        Self.fill(state.q, count: sequences * c.qDim, seed: &seed)
    }

    /// `sequences` sequences of `context` positions each.
    convenience init(model: LlamaModel, sequences: Int, context: Int, precision: KVPrecision,
                     adapters: [LoRAAdapter] = []) {
        self.init(model: model, contexts: Array(repeating: context, count: sequences), precision: precision,
                  adapters: adapters)
    }

    deinit { tables.deallocate() }

    /// Bytes of keys and values one step reads.
    var bytesPerStep: Int {
        contexts.reduce(0, +) * KVCache.bytesPerPosition(config: model.config, precision: cache.precision)
    }

    /// Seconds for `steps` steps of attention over all layers.
    func measureAttention(steps: Int) -> Double {
        timed(steps) {
            for l in 0..<model.config.nLayers { model.attention(batch: batch, layer: cache.layer(l), state) }
        }
    }

    /// Seconds for `steps` whole forward passes. Each rewrites its rows' keys and values
    /// at the last position, so every pass does the same work.
    func measureStep(steps: Int) -> Double {
        timed(steps) { model.forward(batch: batch, cache: cache, state: state) }
    }

    private func timed(_ steps: Int, _ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { body() }
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
