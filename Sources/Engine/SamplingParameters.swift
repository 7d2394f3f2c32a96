/// How to pick the next token from logits. `temperature == 0` is greedy.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 disables.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 disables.
    public var topP: Float
    /// Same seed, same prompt, same parameters: same output. nil draws a fresh seed.
    public var seed: UInt64?
    /// OpenAI's penalties, over the tokens generated so far: a token's logit drops by
    /// presencePenalty once it has appeared, plus frequencyPenalty per appearance.
    public var presencePenalty: Float
    public var frequencyPenalty: Float

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, seed: UInt64? = nil,
                presencePenalty: Float = 0, frequencyPenalty: Float = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
    }

    public var hasPenalties: Bool { presencePenalty != 0 || frequencyPenalty != 0 }

    public static let greedy = SamplingParameters(temperature: 0)

    /// A message naming the first invalid field, or nil when all are valid.
    public var validationError: String? {
        if !temperature.isFinite || temperature < 0 { return "temperature must be a finite number >= 0" }
        if topK < 0 { return "top_k must be >= 0" }
        if !topP.isFinite || topP <= 0 || topP > 1 { return "top_p must be in (0, 1]" }
        if !presencePenalty.isFinite || abs(presencePenalty) > 2 { return "presence_penalty must be between -2 and 2" }
        if !frequencyPenalty.isFinite || abs(frequencyPenalty) > 2 { return "frequency_penalty must be between -2 and 2" }
        return nil
    }
}
