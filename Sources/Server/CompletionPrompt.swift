/// The `prompt` of `POST /v1/completions` in each of OpenAI's four forms: a string, a
/// list of strings, a list of token ids, or a list of token-id lists. Each entry is one
/// prompt, answered with its own `n` choices.
enum CompletionPrompt: Sendable {
    case text(String)
    case tokens([Int])

    /// Prompts, and choices (prompts times n), in one request at most, so that one
    /// request cannot fill the engine's queue.
    static let maxPrompts = 32
    static let maxChoices = 64

    static func decodeList(from decoder: any Decoder) throws -> [CompletionPrompt] {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { return [.text(text)] }
        if let texts = try? container.decode([String].self) { return texts.map(CompletionPrompt.text) }
        if let ids = try? container.decode([Int].self) { return [.tokens(ids)] }
        if let lists = try? container.decode([[Int]].self) { return lists.map(CompletionPrompt.tokens) }
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath,
            debugDescription: "expected a string, a list of strings, a list of token ids or a list of token-id lists"))
    }
}
