import Adapters
import Engine
import Foundation
import Kernels
import Model
import Testing
import Tokenization

/// The batched engine on the real model: batch invariance across adapters and prompt
/// lengths, cancellation, preemption, stop strings, and refusal of bad requests.
@Suite(.serialized) struct BatchEngineTests {
    static let prompts = [
        "What is the capital of France?", "Write a haiku about autumn.", "Name three colors.",
        "Explain photosynthesis briefly.", "Why is the sky blue?", "Count from one to five.",
        "What is 2 plus 2?", "Describe a cat in one sentence.",
    ]

    struct Outcome: Equatable {
        var tokens: [Int] = []
        var text = ""
        var reason: FinishReason?
        var usage: Usage?
    }

    static func collect(_ stream: AsyncStream<GenerationEvent>, stopAfter limit: Int? = nil) async -> Outcome {
        var outcome = Outcome()
        for await event in stream {
            switch event {
            case .token(let id, let text, _):
                outcome.tokens.append(id)
                outcome.text += text
                if let limit, outcome.tokens.count >= limit { return outcome }  // drops the stream: cancels
            case .text(let text):
                outcome.text += text
            case .finished(let reason, let usage):
                outcome.reason = reason
                outcome.usage = usage
            }
        }
        return outcome
    }

    /// Statistics are published after each engine step, so a stream can end a moment
    /// before the engine reports its blocks free: wait (boundedly) for it to go idle.
    static func idleStatistics(_ engine: BatchEngine) async throws -> EngineStatistics {
        for _ in 0..<100 {
            let stats = engine.statistics
            if stats.running == 0 && stats.waiting == 0 && stats.kvBlocksInUse == 0 { return stats }
            try await Task.sleep(for: .milliseconds(20))
        }
        return engine.statistics
    }

    func chatTokens(_ shared: SharedModel, _ prompt: String) throws -> [Int] {
        let text = try shared.chatTemplate.render(messages: [ChatMessage(role: "user", content: prompt)])
        return shared.tokenizer.encode(text)
    }

    /// Each decode variant with the exact f32 KV cache, and the default one with f16.
    @Test(arguments: zip(DecodeVariant.allCases + [.interleaved], [KVPrecision](repeating: .f32, count: 3) + [.f16]))
    func batchOf32WithDistinctAdaptersEqualsEachAlone(variant: DecodeVariant, kvPrecision: KVPrecision) async throws {
        // Given 32 requests: different prompts and lengths, 31 distinct random adapters and one without
        let shared = try SharedModel.get()
        let adapters = (0..<31).map { LoRAAdapter.random(shape: shared.model.adapterShape, rank: 4 + $0 % 3 * 4, seed: UInt64($0)) }
        let requests = try (0..<32).map { i in
            GenerationRequest(promptTokens: try chatTokens(shared, Self.prompts[i % Self.prompts.count] + String(repeating: " Please answer.", count: i % 4)),
                              adapter: i == 0 ? nil : adapters[i - 1], maxTokens: 10)
        }
        let engine = BatchEngine(model: shared.model(variant), tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 32, maxTokensPerStep: 256, maxContext: 256,
                                                                    kvPrecision: kvPrecision))
        defer { engine.shutdown() }
        // When they run together
        let together = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            for (i, request) in requests.enumerated() {
                let stream = try engine.generate(request)
                group.addTask { (i, await Self.collect(stream)) }
            }
            var results = [Outcome](repeating: Outcome(), count: requests.count)
            for try await (i, outcome) in group { results[i] = outcome }
            return results
        }
        // Then each equals the same request run alone, token for token
        for (i, request) in requests.enumerated() {
            let alone = await Self.collect(try engine.generate(request))
            #expect(alone.tokens == together[i].tokens, "request \(i)")
            #expect(alone.tokens.count > 0)
        }
        // And the adapters changed the outputs (they are not no-ops)
        #expect(Set(together.map(\.tokens)).count > 8)
        #expect(try await Self.idleStatistics(engine).kvBlocksInUse == 0)
    }

    @Test func cancellingHalfLeavesTheRestCorrectAndReturnsEveryBlock() async throws {
        // Given 8 long greedy requests and their outputs when nothing is cancelled
        let shared = try SharedModel.get()
        let engine = BatchEngine(model: shared.model, tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 8, maxContext: 256))
        defer { engine.shutdown() }
        let requests = try Self.prompts.map { GenerationRequest(promptTokens: try chatTokens(shared, $0), maxTokens: 40) }
        var solo: [Outcome] = []
        for request in requests { solo.append(await Self.collect(try engine.generate(request))) }
        // When all run at once and the odd ones are dropped after 3 tokens
        let results = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            for (i, request) in requests.enumerated() {
                let stream = try engine.generate(request)
                group.addTask { (i, await Self.collect(stream, stopAfter: i % 2 == 1 ? 3 : nil)) }
            }
            var results = [Outcome](repeating: Outcome(), count: requests.count)
            for try await (i, outcome) in group { results[i] = outcome }
            return results
        }
        // Then the kept ones equal their solo runs, the dropped ones stopped early
        for i in requests.indices where i % 2 == 0 { #expect(results[i] == solo[i], "request \(i)") }
        for i in requests.indices where i % 2 == 1 { #expect(results[i].tokens.count == 3) }
        // And once the engine has seen the cancellations every KV block is free again
        let stats = try await Self.idleStatistics(engine)
        #expect(stats.kvBlocksInUse == 0 && stats.running == 0)
    }

    @Test func preemptionUnderMemoryPressureCompletesEverything() async throws {
        // Given a KV cache with room for about two sequences and six requests
        let shared = try SharedModel.get()
        let engine = BatchEngine(model: shared.model, tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 6, maxContext: 96, kvBlocks: 12, blockSize: 16))
        defer { engine.shutdown() }
        let requests = try Self.prompts.prefix(6).map { GenerationRequest(promptTokens: try chatTokens(shared, $0), maxTokens: 40) }
        // When they run at once
        let results = try await withThrowingTaskGroup(of: Outcome.self) { group in
            for request in requests {
                let stream = try engine.generate(request)
                group.addTask { await Self.collect(stream) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Then every one finishes with its full usage, some were preempted, and no block leaks
        for outcome in results {
            #expect(outcome.reason != nil)
            #expect(outcome.usage?.completionTokens == outcome.tokens.count)
        }
        let stats = try await Self.idleStatistics(engine)
        #expect(stats.preemptions > 0)
        #expect(stats.kvBlocksInUse == 0)
    }

    @Test func stopStringsLogprobsAndLimits() async throws {
        let shared = try SharedModel.get()
        let engine = BatchEngine(model: shared.model, tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 4, maxContext: 128))
        defer { engine.shutdown() }
        let prompt = try chatTokens(shared, "What is the capital of France?")
        // Given the greedy answer "The capital of France is Paris."
        let plain = await Self.collect(try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 20)))
        #expect(plain.text == "The capital of France is Paris.")
        #expect(plain.reason == .stop)
        // When " is" is a stop string, Then the text ends before it
        let stopped = await Self.collect(try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 20, stopSequences: [" is"])))
        #expect(stopped.text == "The capital of France")
        #expect(stopped.reason == .stop)
        // When max_tokens is 3, Then three tokens and reason length
        let short = await Self.collect(try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 3)))
        #expect(short.tokens.count == 3 && short.reason == .length && short.usage?.completionTokens == 3)
        // When logprobs are asked for, Then the greedy token is the top alternative and logprobs are <= 0
        var sawLogprob = false
        for await event in try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 4, topLogprobs: 3)) {
            if case .token(let id, _, let logprob?) = event {
                sawLogprob = true
                #expect(logprob.top.count == 3 && logprob.top[0].token == id && logprob.logprob <= 0)
                #expect(abs(logprob.top[0].logprob - logprob.logprob) < 1e-5)
            }
        }
        #expect(sawLogprob)
    }

    @Test func badRequestsAreRefusedAndTheEngineKeepsServing() async throws {
        let shared = try SharedModel.get()
        let engine = BatchEngine(model: shared.model, tokenizer: shared.tokenizer,
                                 configuration: EngineConfiguration(maxRunningSequences: 4, maxContext: 64))
        defer { engine.shutdown() }
        let prompt = try chatTokens(shared, "Hi")
        // Over-long, empty, out-of-vocabulary, and mismatched-adapter requests each throw
        #expect(throws: EngineError.self) { try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 100)) }
        #expect(throws: EngineError.self) { try engine.generate(GenerationRequest(promptTokens: [], maxTokens: 5)) }
        #expect(throws: EngineError.self) { try engine.generate(GenerationRequest(promptTokens: [999_999], maxTokens: 5)) }
        var otherShape = shared.model.adapterShape
        otherShape.dim = 512
        let mismatched = LoRAAdapter.random(shape: otherShape, rank: 4, seed: 1)
        #expect(throws: EngineError.self) { try engine.generate(GenerationRequest(promptTokens: prompt, adapter: mismatched, maxTokens: 5)) }
        // And a good request still completes
        let ok = await Self.collect(try engine.generate(GenerationRequest(promptTokens: prompt, maxTokens: 5)))
        #expect(ok.tokens.count > 0 && ok.reason != nil)
    }
}
