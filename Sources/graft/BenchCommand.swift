import ArgumentParser
import Engine
import Foundation
import Kernels

/// Prints one JSON line per measurement; medians over several runs after a warm-up,
/// because a shared 2-core machine is noisy.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill and decode speed; one JSON line per measurement.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Timed runs per measurement (the median is reported).")
    var runs = 5

    @Option(name: .customLong("prefill-tokens"), help: "Prompt length for the prefill measurement.")
    var prefillTokens = 512

    @Option(name: .customLong("decode-tokens"), help: "Tokens generated for the decode measurement.")
    var decodeTokens = 128

    func validate() throws {
        if runs < 1 || prefillTokens < 1 || decodeTokens < 2 {
            throw ValidationError("--runs and --prefill-tokens must be >= 1, --decode-tokens >= 2")
        }
    }

    func run() throws {
        let loaded = try LoadedModel(options: options)
        let model = loaded.model
        let prompt = benchPrompt(loaded, count: prefillTokens)
        let threads = Parallel.threadCount

        // Prefill: the whole prompt in one forward pass.
        let prefillGenerator = SequenceGenerator(model: model, contextLength: prefillTokens + 1, prefillChunk: prefillTokens)
        let greedy = Sampler(parameters: .greedy, vocabSize: model.config.vocabSize)
        let prefillSeconds = try measure(runs) {
            _ = try prefillGenerator.generate(prompt: prompt, maxTokens: 1, sampler: greedy, stopTokens: [])
        }
        report(["name": "prefill", "tokens": prefillTokens, "seconds_median": median(prefillSeconds),
                "tokens_per_second": Double(prefillTokens) / median(prefillSeconds), "runs": runs, "threads": threads])

        // Tokenizer: encode ~10k tokens of prose.
        let text = String(repeating: Self.paragraph, count: 250)
        var encoded = 0
        let encodeSeconds = measure(runs) { encoded = loaded.tokenizer.encode(text, parseSpecialTokens: false, addBOS: false).count }
        report(["name": "tokenize", "tokens": encoded, "tokens_per_second": Double(encoded) / median(encodeSeconds), "runs": runs])

        // Decode: time from the first sampled token to the last, single stream, greedy.
        let decodePrompt = try loaded.chatPrompt(user: "Write a long story about a lighthouse keeper.", system: nil)
        let decodeGenerator = SequenceGenerator(model: model, contextLength: decodePrompt.count + decodeTokens)
        var rates: [Double] = []
        for run in 0...runs {
            var firstTokenAt: Date?
            let outcome = try decodeGenerator.generate(prompt: decodePrompt, maxTokens: decodeTokens, sampler: greedy,
                                                       stopTokens: []) { _ in
                if firstTokenAt == nil { firstTokenAt = Date() }
                return true
            }
            let seconds = Date().timeIntervalSince(firstTokenAt!)
            if run > 0 { rates.append(Double(outcome.tokens.count - 1) / seconds) }  // run 0 warms up
        }
        report(["name": "decode", "tokens": decodeTokens, "tokens_per_second": median(rates),
                "runs": runs, "threads": threads,
                "weight_bytes_per_token": model.weights.bytesPerToken])
    }

    static let paragraph = """
        The lighthouse stood at the edge of the cliff, its lamp turning slowly through the \
        night while the sea below broke against the rocks. Ships far out on the water \
        watched for its signal and steered away from the reef. 
        """

    /// A deterministic prompt of exactly `count` tokens.
    private func benchPrompt(_ loaded: LoadedModel, count: Int) -> [Int] {
        var tokens: [Int] = []
        while tokens.count < count { tokens += loaded.tokenizer.encode(Self.paragraph, parseSpecialTokens: false, addBOS: false) }
        return Array(tokens.prefix(count))
    }

    /// Wall-clock seconds of `runs` calls of `body`, after one warm-up call.
    private func measure(_ runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
        try body()
        return try (0..<runs).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2]
            : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func report(_ fields: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
