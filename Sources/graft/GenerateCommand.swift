import ArgumentParser
import Engine
import Foundation
import Tokenization
import Adapters

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text after a prompt and print only the generated text.")

    @OptionGroup var options: ModelOptions

    @Option(help: "The prompt text.")
    var prompt: String

    @Flag(help: "Format the prompt as one user message through the model's chat template.")
    var chat = false

    @Option(help: "A system message (with --chat).")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (1 disables).")
    var topP: Float = 1

    @Option(name: .customLong("top-k"), help: "Keep only the k most likely tokens (0 disables).")
    var topK = 0

    @Option(help: "Random seed: the same seed gives the same output.")
    var seed: UInt64?

    @Option(help: "A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) to apply.")
    var adapter: String?

    @Option(help: "Stop when this text is generated (repeatable); it is not printed.")
    var stop: [String] = []

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if let message = sampling.validationError { throw ValidationError(message) }
    }

    var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }

    func run() async throws {
        let loaded = try LoadedModel(options: options)
        let tokenizer = loaded.tokenizer
        let promptTokens = chat
            ? try loaded.chatPrompt(user: prompt, system: system)
            : tokenizer.encode(prompt, parseSpecialTokens: true, addBOS: false)
        let lora = try adapter.map {
            try LoRAAdapter.loadPEFT(directory: $0, base: loaded.model.adapterShape, precision: loaded.adapterPrecision)
        }
        let engine = BatchEngine(model: loaded.model, tokenizer: tokenizer, configuration: EngineConfiguration(
            maxRunningSequences: 1, maxContext: promptTokens.count + maxTokens,
            maxAdapterRank: max(64, lora?.maxRank ?? 0), kvPrecision: loaded.kvPrecision))
        defer { engine.shutdown() }
        let request = GenerationRequest(promptTokens: promptTokens, adapter: lora, sampling: sampling,
                                        maxTokens: maxTokens, stopSequences: stop)
        let started = Date()
        for await event in try engine.generate(request) {
            switch event {
            case .token(_, let text, _), .text(let text):
                FileHandle.standardOutput.write(Data(text.utf8))
            case .finished(let reason, let usage):
                FileHandle.standardOutput.write(Data("\n".utf8))
                log(String(format: "%d prompt + %d generated tokens in %.2f s (finish: %@)",
                           usage.promptTokens, usage.completionTokens, Date().timeIntervalSince(started), reason.rawValue))
            }
        }
    }
}
