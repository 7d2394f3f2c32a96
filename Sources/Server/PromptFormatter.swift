import Tokenization

/// Turns chat messages or a completion prompt into prompt tokens, and token ids back into
/// the strings logprobs report.
public struct PromptFormatter: Sendable {
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    public init(tokenizer: Tokenizer, chatTemplate: ChatTemplate) {
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
    }

    func chatTokens(_ messages: [ChatMessage]) throws(OpenAIError) -> [Int] {
        let text: String
        do {
            text = try chatTemplate.render(messages: messages, addGenerationPrompt: true,
                                           bosToken: tokenizer.bosTokenId.map { tokenizer.decode([$0]) } ?? "",
                                           eosToken: tokenizer.eosTokenId.map { tokenizer.decode([$0]) } ?? "")
        } catch {
            throw .invalidRequest("The messages cannot be rendered with the model's chat template: \(error)", param: "messages")
        }
        return tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
    }

    /// Raw completion prompts are user text: special-token markup in them stays text.
    func completionTokens(_ prompt: String) -> [Int] {
        tokenizer.encode(prompt, parseSpecialTokens: false, addBOS: false)
    }

    /// The token as text (invalid UTF-8 of a partial character shows as U+FFFD, as in
    /// OpenAI's API) and its raw bytes.
    func token(_ id: Int) -> (text: String, bytes: [UInt8]) {
        let bytes = tokenizer.tokenBytes(id)
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }
}
