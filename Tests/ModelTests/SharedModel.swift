import Adapters
import Engine
import Model
import ModelFormats
import Tokenization

/// The real model and tokenizer, loaded once for all tests in the process.
final class SharedModel: Sendable {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    private init() throws {
        let gguf = try GGUFFile(path: try Fixtures.modelPath())
        model = try LlamaModel(gguf: gguf)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try ChatTemplate(source: gguf.metadata["tokenizer.chat_template"]!.string!)
    }

    private static let loaded = Result { try SharedModel() }
    static func get() throws -> SharedModel { try loaded.get() }

    /// Logits of every position of `tokens`, run as one sequence from position 0, in
    /// chunks of `chunk` rows. (positions × vocab)
    func logits(tokens: [Int], chunk: Int = 512, adapter: LoRAAdapter? = nil) -> [[Float]] {
        let c = model.config
        let cache = KVCache(config: c, nBlocks: (tokens.count + 15) / 16)
        let table = BlockTable(capacity: cache.nBlocks)
        #expect(table.reserve(positions: tokens.count, in: cache))
        let state = RunState(config: c, maxRows: chunk, maxLogitRows: chunk, maxContext: tokens.count)
        let batch = ForwardBatch(maxRows: chunk, maxSequences: 1)
        var result: [[Float]] = []
        var start = 0
        while start < tokens.count {
            let end = min(start + chunk, tokens.count)
            batch.reset()
            batch.add(tokens: tokens[start..<end].map { Int32($0) }, startPosition: start,
                      blockTable: table.entries, logits: .all, adapter: adapter)
            model.forward(batch: batch, cache: cache, state: state)
            for i in 0..<(end - start) {
                result.append(Array(UnsafeBufferPointer(start: state.logits + i * c.vocabSize, count: c.vocabSize)))
            }
            start = end
        }
        return result
    }
}

import Testing
