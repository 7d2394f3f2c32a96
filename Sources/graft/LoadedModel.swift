import Foundation
import Kernels
import Model
import ModelFormats
import Tokenization

/// The model and tokenizer of one GGUF file, loaded together for a command.
struct LoadedModel {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate
    /// How engines serving this model store their KV cache.
    let kvPrecision: KVPrecision
    /// How adapters loaded for this model hold their weights.
    let adapterPrecision: LoRAWeightPrecision

    init(options: ModelOptions) throws {
        options.configureKernels()
        let path = options.modelPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("model file not found at \(path); run scripts/setup.sh to fetch the default model, or pass --model")
        }
        let started = Date()
        let gguf = try GGUFFile(path: path)
        model = try LlamaModel(gguf: gguf, decodeActivations: options.activations, layout: options.weightLayout)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try gguf.metadata["tokenizer.chat_template"]?.string.map { try ChatTemplate(source: $0) } ?? .chatML
        kvPrecision = options.kvCache
        adapterPrecision = options.adapterWeights
        let c = model.config
        log(String(format: "loaded %@: %@, %d layers, dim %d, vocab %d, %@ decode activations, %@ weights, %@ KV cache, %@ adapter weights, in %.2f s",
                   (path as NSString).lastPathComponent, c.architecture, c.nLayers, c.dim, c.vocabSize,
                   options.activations.rawValue, options.weightLayout.rawValue, kvPrecision.rawValue,
                   adapterPrecision.rawValue, Date().timeIntervalSince(started)))
    }

    /// Prompt tokens for a chat of one user message (after an optional system message),
    /// rendered through the model's own chat template.
    func chatPrompt(user: String, system: String?) throws -> [Int] {
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: user))
        let text = try chatTemplate.render(messages: messages, addGenerationPrompt: true,
                                           bosToken: tokenizer.bosTokenId.map { tokenizer.decode([$0]) } ?? "",
                                           eosToken: tokenizer.eosTokenId.map { tokenizer.decode([$0]) } ?? "")
        return tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
    }
}

struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Progress and summaries go to stderr so stdout carries only the command's output.
func log(_ message: String) {
    FileHandle.standardError.write(Data(("graft: " + message + "\n").utf8))
}
