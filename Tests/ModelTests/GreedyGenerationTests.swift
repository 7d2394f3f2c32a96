import Engine
import Kernels
import Testing
import Tokenization

/// Greedy chat generation through the batched engine against exact fp32 math: the
/// same prompt ids, the same output ids, the same text, in every decode variant
/// (interleaved weights, the default; row-major; row-major with int16 activations).
@Suite struct GreedyGenerationTests {
    @Test(arguments: DecodeVariant.allCases)
    func greedyChatMatchesFp32References(variant: DecodeVariant) async throws {
        let shared = try SharedModel.get()
        let engine = BatchEngine(model: shared.model(variant), tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 8, maxContext: 256))
        defer { engine.shutdown() }
        for reference in try Fixtures.jsonLines("greedy_fp32.jsonl") {
            // Given one user message through the model's chat template
            let prompt = reference["prompt"] as! String
            let text = try shared.chatTemplate.render(messages: [ChatMessage(role: "user", content: prompt)],
                                                      addGenerationPrompt: true)
            let promptIds = shared.tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
            #expect(promptIds == reference["prompt_ids"] as! [Int], "prompt ids for \(prompt)")
            // When generating greedily up to max_tokens
            let request = GenerationRequest(promptTokens: promptIds, maxTokens: reference["max_tokens"] as! Int)
            var ids: [Int] = []
            var output = ""
            for await event in try engine.generate(request) {
                switch event {
                case .token(let id, let piece, _): ids.append(id); output += piece
                case .text(let piece): output += piece
                case .finished: break
                }
            }
            // Then tokens and text are the reference's
            #expect(ids == reference["output_ids"] as! [Int], "output ids for \(prompt)")
            #expect(output == reference["output"] as! String)
        }
    }
}
