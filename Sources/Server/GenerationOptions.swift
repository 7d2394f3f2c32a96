import Adapters
import Engine

/// The sampling and stopping fields chat and text completions share, decoded from the
/// same JSON object as the endpoint's own fields. Unknown fields are ignored because
/// OpenAI clients send extras.
struct GenerationOptions: Decodable, Sendable {
    var model: String
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Float?
    var topP: Float?
    /// Not in OpenAI's API; llama.cpp and vLLM accept it too.
    var topK: Int?
    var n: Int?
    var stop: OneOrMany?
    var seed: Int?
    var presencePenalty: Float?
    var frequencyPenalty: Float?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var user: String?

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    /// `stop` accepts a string or an array of strings.
    enum OneOrMany: Decodable, Sendable {
        case one(String)
        case many([String])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { self = .one(one) } else { self = .many(try container.decode([String].self)) }
        }

        var values: [String] {
            switch self {
            case .one(let value): return [value]
            case .many(let values): return values
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case model, temperature, n, stop, seed, stream, user
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p", topK = "top_k"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty", streamOptions = "stream_options"
    }

    static let maxChoices = 16
    static let maxStopSequences = 4

    var choiceCount: Int { n ?? 1 }
    var isStreaming: Bool { stream ?? false }
    var includeUsage: Bool { streamOptions?.includeUsage ?? false }

    /// The engine request for `promptTokens`. Without max_tokens the completion may use
    /// the rest of the context, up to `defaultMaxTokens`.
    func generationRequest(promptTokens: [Int], adapter: LoRAAdapter?, topLogprobs: Int?,
                           contextLength: Int, defaultMaxTokens: Int) throws(OpenAIError) -> GenerationRequest {
        let limit: Int
        if let requested = maxCompletionTokens ?? maxTokens {
            guard requested >= 1 else {
                throw .invalidRequest("max_tokens must be at least 1", param: maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens")
            }
            limit = requested
        } else {
            limit = max(1, min(defaultMaxTokens, contextLength - promptTokens.count))
        }
        guard (1...Self.maxChoices).contains(choiceCount) else {
            throw .invalidRequest("n must be between 1 and \(Self.maxChoices)", param: "n")
        }
        let stops = stop?.values ?? []
        guard stops.count <= Self.maxStopSequences, !stops.contains("") else {
            throw .invalidRequest("stop takes up to \(Self.maxStopSequences) non-empty strings", param: "stop")
        }
        if let temperature, temperature > 2 { throw .invalidRequest("temperature must be between 0 and 2", param: "temperature") }
        let sampling = SamplingParameters(temperature: temperature ?? 1, topK: topK ?? 0, topP: topP ?? 1,
                                          seed: seed.map { UInt64(bitPattern: Int64($0)) },
                                          presencePenalty: presencePenalty ?? 0, frequencyPenalty: frequencyPenalty ?? 0)
        if let message = sampling.validationError {
            // The engine's messages begin with the field's name.
            throw .invalidRequest(message, param: message.split(separator: " ").first.map(String.init))
        }
        return GenerationRequest(promptTokens: promptTokens, adapter: adapter, sampling: sampling, maxTokens: limit,
                                 stopSequences: stops, topLogprobs: topLogprobs)
    }
}
