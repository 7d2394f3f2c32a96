import Adapters
import Engine
import Foundation
import Model

/// Runs groups of concurrent greedy streams through a fresh engine and times them.
struct EngineBench {
    let loaded: LoadedModel

    static let paragraph = """
        The lighthouse stood at the edge of the cliff, its lamp turning slowly through the \
        night while the sea below broke against the rocks. Ships far out on the water \
        watched for its signal and steered away from the reef. 
        """

    struct Timing {
        /// Submit to last event.
        var totalSeconds: Double
        /// Tokens emitted after every stream had its first token, per second of that window.
        var decodeTokensPerSecond: Double
    }

    /// A deterministic prompt of exactly `tokens` tokens; `variant` shifts the text so
    /// concurrent streams differ.
    func prompt(tokens: Int, variant: Int) -> [Int] {
        let words = Self.paragraph.split(separator: " ")
        let shifted = (words[(variant % words.count)...] + words[..<(variant % words.count)]).joined(separator: " ")
        var ids: [Int] = []
        while ids.count < tokens { ids += loaded.tokenizer.encode(shifted + " ", parseSpecialTokens: false, addBOS: false) }
        return Array(ids.prefix(tokens))
    }

    func run(streams: [[Int]], adapters: [LoRAAdapter?]? = nil, maxTokens: Int,
             maxTokensPerStep: Int = 512) async throws -> Timing {
        let longest = streams.map(\.count).max()! + maxTokens
        let engine = BatchEngine(model: loaded.model, tokenizer: loaded.tokenizer, configuration: EngineConfiguration(
            maxRunningSequences: max(1, streams.count), maxTokensPerStep: max(maxTokensPerStep, streams.count),
            maxContext: longest, kvBlocks: streams.count * (longest / KVCache.defaultBlockSize + 2),
            kvPrecision: loaded.kvPrecision))
        defer { engine.shutdown() }
        let start = DispatchTime.now().uptimeNanoseconds
        // Per stream: when its first token came, and the times of all its tokens.
        let perStream = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for (i, prompt) in streams.enumerated() {
                let request = GenerationRequest(promptTokens: prompt, adapter: adapters?[i] ?? nil,
                                                maxTokens: maxTokens, ignoreEndOfGeneration: true)
                let stream = try engine.generate(request)
                group.addTask {
                    var times: [UInt64] = []
                    for await event in stream {
                        if case .token = event { times.append(DispatchTime.now().uptimeNanoseconds) }
                    }
                    return times
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let end = perStream.compactMap(\.last).max() ?? start
        let allStarted = perStream.compactMap(\.first).max() ?? start
        let decoded = perStream.reduce(0) { $0 + $1.filter { $0 > allStarted }.count }
        let window = Double(end - allStarted) / 1e9
        return Timing(totalSeconds: Double(end - start) / 1e9,
                      decodeTokensPerSecond: window > 0 ? Double(decoded) / window : 0)
    }

    /// Median of `runs` calls of `body`, after one warm-up call.
    func median(_ runs: Int, _ body: () async throws -> Double) async throws -> Double {
        _ = try await body()
        var values: [Double] = []
        for _ in 0..<runs { values.append(try await body()) }
        return Self.median(values)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}
