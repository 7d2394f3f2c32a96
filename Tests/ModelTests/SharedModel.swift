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
        var result: [[Float]] = []
        SequenceScorer(model: model, maxTokens: tokens.count, rowsPerPass: chunk)
            .forEachPosition(tokens: tokens, adapter: adapter) { _, row in result.append(Array(row)) }
        return result
    }
}

import Testing
