import Engine
import Foundation

/// Pieces that chat and text completion responses share.
struct UsageDTO: Encodable, Sendable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int

    /// `n` choices share one prompt, which OpenAI counts once.
    init(_ usages: [Usage]) {
        self.init(promptTokens: usages.first?.promptTokens ?? 0, usages)
    }

    /// Several prompts (a completions request's list): their tokens, each counted once.
    init(promptTokens: Int, _ usages: [Usage]) {
        self.promptTokens = promptTokens
        completionTokens = usages.reduce(0) { $0 + $1.completionTokens }
        totalTokens = promptTokens + completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }
}

enum ResponseID {
    /// `prefix` plus 24 random alphanumerics: unique enough to key feedback later.
    static func make(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return prefix + String((0..<24).map { _ in alphabet.randomElement()! })
    }
}

/// One choice's events gathered for a non-streaming response.
struct CollectedChoice {
    var text = ""
    var logprobs: [TokenLogprob] = []
    var finishReason: FinishReason?
    var usage: Usage?

    mutating func add(_ event: GenerationEvent) {
        switch event {
        case .token(_, let piece, let logprob):
            text += piece
            if let logprob { logprobs.append(logprob) }
        case .text(let piece):
            text += piece
        case .finished(let reason, let usage):
            finishReason = reason
            self.usage = usage
        }
    }
}

extension Date {
    var unixSeconds: Int { Int(timeIntervalSince1970) }
}
