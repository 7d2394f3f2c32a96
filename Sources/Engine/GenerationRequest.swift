import Adapters

/// One generation the engine runs: a tokenized prompt, the adapter to apply (nil for
/// the bare base model) and how to sample and stop.
public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var adapter: LoRAAdapter?
    public var sampling: SamplingParameters
    public var maxTokens: Int
    /// Text that ends generation; the stop string itself is not emitted.
    public var stopSequences: [String]
    /// Report each token's logprob and this many top alternatives (nil: no logprobs).
    public var topLogprobs: Int?
    /// Keep generating through end-of-generation tokens (benchmarks want exact lengths).
    public var ignoreEndOfGeneration: Bool

    public init(promptTokens: [Int], adapter: LoRAAdapter? = nil, sampling: SamplingParameters = .greedy,
                maxTokens: Int, stopSequences: [String] = [], topLogprobs: Int? = nil,
                ignoreEndOfGeneration: Bool = false) {
        self.promptTokens = promptTokens
        self.adapter = adapter
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopSequences = stopSequences
        self.topLogprobs = topLogprobs
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
    }
}

/// Why a generation ended, in OpenAI's words.
public enum FinishReason: String, Sendable {
    /// An end-of-generation token or a stop string.
    case stop
    /// max_tokens.
    case length
}

public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }
}

/// What a request's stream yields: tokens as they are sampled, then one `finished`.
public enum GenerationEvent: Sendable {
    /// `text` is the newly completed text (may be empty while a multi-byte character or
    /// a possible stop string is held back).
    case token(id: Int, text: String, logprob: TokenLogprob?)
    /// Held-back text of earlier tokens, released when generation ends for a reason
    /// other than a stop string.
    case text(String)
    case finished(reason: FinishReason, usage: Usage)
}

public enum EngineError: Error, CustomStringConvertible, Equatable {
    case invalidRequest(String)
    case contextOverflow(promptTokens: Int, maxTokens: Int, limit: Int)
    case queueFull
    case shuttingDown

    public var description: String {
        switch self {
        case .invalidRequest(let why): return why
        case .contextOverflow(let prompt, let maxTokens, let limit):
            return "prompt of \(prompt) tokens plus max_tokens \(maxTokens) exceeds the context limit of \(limit) tokens"
        case .queueFull: return "the request queue is full; retry later"
        case .shuttingDown: return "the engine is shutting down"
        }
    }
}

/// What the HTTP layer needs from an engine: submit, then read the stream. Ending
/// the stream early (the client went away) cancels the generation.
public protocol InferenceEngine: Sendable {
    func generate(_ request: GenerationRequest) throws(EngineError) -> AsyncStream<GenerationEvent>
    var statistics: EngineStatistics { get }
}

public struct EngineStatistics: Sendable {
    public var running: Int
    public var waiting: Int
    public var kvBlocksInUse: Int
    public var kvBlocksTotal: Int
    public var stepsRun: Int
    public var preemptions: Int
}
