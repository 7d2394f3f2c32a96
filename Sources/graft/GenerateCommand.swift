import ArgumentParser
import Engine
import Foundation
import Tokenization

struct GenerateCommand: ParsableCommand {
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

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
        if let message = sampling.validationError { throw ValidationError(message) }
    }

    var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }

    func run() throws {
        let loaded = try LoadedModel(options: options)
        let tokenizer = loaded.tokenizer
        let promptTokens = chat
            ? try loaded.chatPrompt(user: prompt, system: system)
            : tokenizer.encode(prompt, parseSpecialTokens: true, addBOS: false)
        let generator = SequenceGenerator(model: loaded.model,
                                          contextLength: min(loaded.model.config.contextLength, promptTokens.count + maxTokens))
        let sampler = Sampler(parameters: sampling, vocabSize: loaded.model.config.vocabSize)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        let started = Date()
        let outcome = try generator.generate(prompt: promptTokens, maxTokens: maxTokens, sampler: sampler,
                                             stopTokens: tokenizer.endOfGenerationTokenIds) { token in
            let text = detokenizer.append(token)
            if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
            return true
        }
        FileHandle.standardOutput.write(Data((detokenizer.flush() + "\n").utf8))
        let seconds = Date().timeIntervalSince(started)
        log(String(format: "%d prompt + %d generated tokens in %.2f s (finish: %@)",
                   outcome.promptTokens, outcome.tokens.count, seconds, outcome.finishReason.rawValue))
    }
}
