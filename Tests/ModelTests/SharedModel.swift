import Adapters
import Engine
import Kernels
import Model
import ModelFormats
import Tokenization

/// The ways decode rows can run the real model: the default, int16 activations, and
/// interleaved Q4_1 weights.
enum DecodeVariant: String, CaseIterable, Sendable {
    case f32, int16, interleaved
}

/// The real model and tokenizer, loaded once for all tests in the process.
final class SharedModel: Sendable {
    let model: LlamaModel
    /// The same weights, decode rows with int16 activations.
    let int16Model: LlamaModel
    /// The same weights with Q4_1 interleaved.
    let interleavedModel: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    private init() throws {
        let gguf = try GGUFFile(path: try Fixtures.modelPath())
        model = try LlamaModel(gguf: gguf)
        int16Model = try LlamaModel(gguf: gguf, decodeActivations: .int16)
        interleavedModel = try LlamaModel(gguf: gguf, layout: .interleaved)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try ChatTemplate(source: gguf.metadata["tokenizer.chat_template"]!.string!)
    }

    private static let loaded = Result { try SharedModel() }
    static func get() throws -> SharedModel { try loaded.get() }

    func model(_ variant: DecodeVariant) -> LlamaModel {
        switch variant {
        case .f32: model
        case .int16: int16Model
        case .interleaved: interleavedModel
        }
    }

    /// Logits of every position of `tokens`, run as one sequence from position 0, in
    /// chunks of `chunk` rows. (positions × vocab)
    func logits(tokens: [Int], chunk: Int = 512, adapter: LoRAAdapter? = nil,
                variant: DecodeVariant = .f32) -> [[Float]] {
        var result: [[Float]] = []
        SequenceScorer(model: model(variant), maxTokens: tokens.count, rowsPerPass: chunk)
            .forEachPosition(tokens: tokens, adapter: adapter) { _, row in result.append(Array(row)) }
        return result
    }
}

import Testing
