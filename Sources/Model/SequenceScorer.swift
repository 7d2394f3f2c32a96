import Adapters
import Kernels

/// Runs whole token sequences through the model, each from position 0 in a KV cache of
/// its own, and hands over the logits of every position: scoring a text against a
/// reference (top-1 agreement, perplexity) without an engine. Storage for sequences of
/// up to `maxTokens` is allocated once.
public final class SequenceScorer {
    public let model: LlamaModel
    public let maxTokens: Int
    /// Rows per forward pass: `maxTokens` runs a sequence as one prompt (the prefill
    /// path); 1 feeds one token per pass, the path every generated token takes.
    public let rowsPerPass: Int
    private let cache: KVCache
    private let table: BlockTable
    private let state: RunState
    private let batch: ForwardBatch

    public init(model: LlamaModel, maxTokens: Int, rowsPerPass: Int? = nil, kvPrecision: KVPrecision = .f32) {
        precondition(maxTokens > 0 && (rowsPerPass ?? 1) > 0)
        self.model = model
        self.maxTokens = maxTokens
        self.rowsPerPass = min(rowsPerPass ?? maxTokens, maxTokens)
        let c = model.config
        let blockSize = KVCache.defaultBlockSize
        cache = KVCache(config: c, nBlocks: (maxTokens + blockSize - 1) / blockSize, precision: kvPrecision)
        table = BlockTable(capacity: cache.nBlocks)
        state = RunState(config: c, maxRows: self.rowsPerPass, maxLogitRows: self.rowsPerPass, maxContext: maxTokens)
        batch = ForwardBatch(maxRows: self.rowsPerPass, maxSequences: 1)
    }

    /// Calls `body(position, logits)` for every position of `tokens`, in order; the
    /// logits (vocabSize floats) are valid only during the call.
    public func forEachPosition(tokens: [Int], adapter: LoRAAdapter? = nil,
                                _ body: (_ position: Int, _ logits: UnsafeBufferPointer<Float>) -> Void) {
        precondition(tokens.count <= maxTokens, "\(tokens.count) tokens, scorer holds \(maxTokens)")
        let vocab = model.config.vocabSize
        precondition(table.reserve(positions: tokens.count, in: cache))
        defer { table.release(to: cache) }
        var start = 0
        while start < tokens.count {
            let end = min(start + rowsPerPass, tokens.count)
            batch.reset()
            batch.add(tokens: tokens[start..<end].map { Int32($0) }, startPosition: start,
                      blockTable: table.entries, logits: .all, adapter: adapter)
            model.forward(batch: batch, cache: cache, state: state)
            for i in 0..<(end - start) {
                body(start + i, UnsafeBufferPointer(start: state.logits + i * vocab, count: vocab))
            }
            start = end
        }
    }

    /// The top-1 next-token id at every position of `tokens` (the lowest id wins a tie).
    public func topTokens(tokens: [Int], adapter: LoRAAdapter? = nil) -> [Int] {
        var top: [Int] = []
        top.reserveCapacity(tokens.count)
        forEachPosition(tokens: tokens, adapter: adapter) { _, logits in
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            top.append(best)
        }
        return top
    }
}
