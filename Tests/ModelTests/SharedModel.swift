import Adapters
import Engine
import Kernels
import Model
import ModelFormats
import Tokenization

/// The real model and tokenizer, loaded once for all tests in the process.
final class SharedModel: Sendable {
    let model: LlamaModel
    /// The same weights, decode rows with int16 activations.
    let int16Model: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    private init() throws {
        let gguf = try GGUFFile(path: try Fixtures.modelPath())
        model = try LlamaModel(gguf: gguf)
        int16Model = try LlamaModel(gguf: gguf, decodeActivations: .int16)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try ChatTemplate(source: gguf.metadata["tokenizer.chat_template"]!.string!)
    }

    private static let loaded = Result { try SharedModel() }
    static func get() throws -> SharedModel { try loaded.get() }

    func model(_ activations: MatMul.ActivationPrecision) -> LlamaModel {
        activations == .f32 ? model : int16Model
    }

    /// Logits of every position of `tokens`, run as one sequence from position 0, in
    /// chunks of `chunk` rows. (positions × vocab)
    func logits(tokens: [Int], chunk: Int = 512, adapter: LoRAAdapter? = nil,
                activations: MatMul.ActivationPrecision = .f32) -> [[Float]] {
        var result: [[Float]] = []
        SequenceScorer(model: model(activations), maxTokens: tokens.count, rowsPerPass: chunk)
            .forEachPosition(tokens: tokens, adapter: adapter) { _, row in result.append(Array(row)) }
        return result
    }
}

import Testing
