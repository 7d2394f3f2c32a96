import Engine
import Testing
import Tokenization

/// Greedy chat generation against exact fp32 math: the same prompt ids, the same
/// output ids, the same text.
@Suite struct GreedyGenerationTests {
    @Test func greedyChatMatchesFp32References() throws {
        let shared = try SharedModel.get()
        for reference in try Fixtures.jsonLines("greedy_fp32.jsonl") {
            // Given one user message through the model's chat template
            let prompt = reference["prompt"] as! String
            let text = try shared.chatTemplate.render(messages: [ChatMessage(role: "user", content: prompt)],
                                                      addGenerationPrompt: true)
            let promptIds = shared.tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
            #expect(promptIds == reference["prompt_ids"] as! [Int], "prompt ids for \(prompt)")
            // When generating greedily up to max_tokens
            let maxTokens = reference["max_tokens"] as! Int
            let generator = SequenceGenerator(model: shared.model, contextLength: promptIds.count + maxTokens)
            let outcome = try generator.generate(
                prompt: promptIds, maxTokens: maxTokens,
                sampler: Sampler(parameters: .greedy, vocabSize: shared.model.config.vocabSize),
                stopTokens: shared.tokenizer.endOfGenerationTokenIds)
            // Then tokens and text are the reference's
            #expect(outcome.tokens == reference["output_ids"] as! [Int], "output ids for \(prompt)")
            #expect(shared.tokenizer.decode(outcome.tokens, skipSpecialTokens: true) == reference["output"] as! String)
        }
    }
}
