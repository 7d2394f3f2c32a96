import Adapters
import Engine
import Kernels
import Model
import ModelFormats
import Tokenization

/// The ways decode rows can run the real model: the default (interleaved weights, f32),
/// row-major weights with f32 activations, and row-major with int16 activations.
enum DecodeVariant: String, CaseIterable, Sendable {
    case interleaved, rowMajor, int16
}

/// The real model and tokenizer, loaded once for all tests in the process.
final class SharedModel: Sendable {
    /// The default: Q4_1 and Q8_0 weights interleaved.
    let model: LlamaModel
    /// The same weights row-major.
    let rowMajorModel: LlamaModel
    /// Row-major, decode rows with int16 activations.
    let int16Model: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    private init() throws {
        let gguf = try GGUFFile(path: try Fixtures.modelPath())
        model = try LlamaModel(gguf: gguf)
        rowMajorModel = try LlamaModel(gguf: gguf, layout: .rowMajor)
        int16Model = try LlamaModel(gguf: gguf, decodeActivations: .int16, layout: .rowMajor)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try ChatTemplate(source: gguf.metadata["tokenizer.chat_template"]!.string!)
    }

    private static let loaded = Result { try SharedModel() }
    static func get() throws -> SharedModel { try loaded.get() }

    func model(_ variant: DecodeVariant) -> LlamaModel {
        switch variant {
        case .interleaved: model
        case .rowMajor: rowMajorModel
        case .int16: int16Model
        }
    }

    /// Logits of every position of `tokens`, run as one sequence from position 0, in
    /// chunks of `chunk` rows. (positions × vocab)
    func logits(tokens: [Int], chunk: Int = 512, adapter: LoRAAdapter? = nil,
                variant: DecodeVariant = .interleaved) -> [[Float]] {
        var result: [[Float]] = []
        SequenceScorer(model: model(variant), maxTokens: tokens.count, rowsPerPass: chunk)
            .forEachPosition(tokens: tokens, adapter: adapter) { _, row in result.append(Array(row)) }
        return result
    }
}

import Testing
