import Adapters
import Engine
import Foundation
import Testing

extension ServerTests {
    @Test func chatCompletionAnswersTheQuestion() async throws {
        try await TestServer.with { server in
            // Given a greedy chat request
            let reply = try await server.request("/v1/chat/completions", json: [
                "model": "smollm2-135m", "temperature": 0, "max_tokens": 20, "user": "u1", "unknown_extra": true,
                "messages": [["role": "system", "content": "You are helpful."],
                             ["role": "user", "content": "What is the capital of France?"]],
            ])
            // Then the answer names Paris, in OpenAI's response shape
            #expect(reply.status == 200)
            let json = reply.json
            #expect(json.choiceText()?.contains("Paris") == true)
            #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(json["object"] as? String == "chat.completion")
            #expect(json["model"] as? String == "smollm2-135m")
            let choice = (json["choices"] as! [[String: Any]])[0]
            #expect(choice["index"] as? Int == 0)
            #expect(choice["finish_reason"] as? String == "stop")
            let usage = json["usage"] as! [String: Any]
            #expect((usage["completion_tokens"] as! Int) > 0)
            #expect(usage["total_tokens"] as? Int == (usage["prompt_tokens"] as! Int) + (usage["completion_tokens"] as! Int))
            #expect(reply.headers["x-request-id"] != nil)
        }
    }

    @Test func streamingChatMatchesTheNonStreamingAnswer() async throws {
        try await TestServer.with { server in
            let body: [String: Any] = ["model": "smollm2-135m", "temperature": 0, "max_tokens": 12,
                                       "messages": [["role": "user", "content": "Name three colors."]]]
            // When the same greedy request is sent streaming (with usage) and not
            let whole = try await server.request("/v1/chat/completions", json: body).json
            var streaming = body
            streaming["stream"] = true
            streaming["stream_options"] = ["include_usage": true]
            let (status, events, done) = try await server.stream("/v1/chat/completions", json: streaming)
            // Then the deltas add up to the same text, the last choice chunk has a finish
            // reason, a usage chunk follows, and [DONE] closes the stream
            #expect(status == 200)
            #expect(done)
            let choices = events.flatMap { $0["choices"] as! [[String: Any]] }
            let text = choices.compactMap { ($0["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(text == whole.choiceText())
            #expect((choices.first?["delta"] as? [String: Any])?["role"] as? String == "assistant")
            let wholeChoice = (whole["choices"] as! [[String: Any]])[0]
            #expect(choices.last?["finish_reason"] as? String == wholeChoice["finish_reason"] as? String)
            let usage = events.last?["usage"] as? [String: Any]
            #expect(usage?["completion_tokens"] as? Int == (whole["usage"] as! [String: Any])["completion_tokens"] as? Int)
            #expect(Set(events.compactMap { $0["id"] as? String }).count == 1)
            #expect(events.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        }
    }

    @Test func chatLogprobsAndSeveralChoices() async throws {
        try await TestServer.with { server in
            let json = try await server.request("/v1/chat/completions", json: [
                "model": "smollm2-135m", "max_tokens": 4, "n": 3, "seed": 7, "logprobs": true, "top_logprobs": 2,
                "messages": [["role": "user", "content": "Say hi."]],
            ]).json
            let choices = json["choices"] as! [[String: Any]]
            #expect(choices.map { $0["index"] as? Int } == [0, 1, 2])
            let content = (choices[0]["logprobs"] as! [String: Any])["content"] as! [[String: Any]]
            #expect(!content.isEmpty)
            #expect((content[0]["top_logprobs"] as! [[String: Any]]).count == 2)
            #expect(content[0]["bytes"] is [Int])
            #expect((content[0]["logprob"] as! Double) <= 0)
            #expect((json["usage"] as! [String: Any])["completion_tokens"] as? Int ?? 0 >= 3)
        }
    }

    @Test func textCompletionWithLogprobsAndStreaming() async throws {
        try await TestServer.with { server in
            let body: [String: Any] = ["model": "smollm2-135m", "prompt": "The capital of France is", "max_tokens": 6,
                                       "temperature": 0, "logprobs": 2, "stop": ["\n\n"]]
            let json = try await server.request("/v1/completions", json: body).json
            #expect((json["id"] as? String)?.hasPrefix("cmpl-") == true)
            #expect(json["object"] as? String == "text_completion")
            #expect(json.choiceText()?.contains("Paris") == true)
            let logprobs = (json["choices"] as! [[String: Any]])[0]["logprobs"] as! [String: Any]
            let tokens = logprobs["tokens"] as! [String]
            // The stop string's own token is reported, though its text is not returned.
            #expect(tokens.joined().hasPrefix(json.choiceText() ?? "-"))
            #expect((logprobs["token_logprobs"] as! [Double]).count == tokens.count)
            #expect((logprobs["top_logprobs"] as! [[String: Double]]).allSatisfy { $0.count == 2 })

            var streaming = body
            streaming["stream"] = true
            let (_, events, done) = try await server.stream("/v1/completions", json: streaming)
            #expect(done)
            #expect(events.compactMap { $0.choiceText() }.joined() == json.choiceText())
        }
    }

    @Test func modelsListTheBaseAndEveryAdapter() async throws {
        try await TestServer.with(adapters: 2) { server in
            let list = try await server.get("/v1/models").json
            #expect(list["object"] as? String == "list")
            let data = list["data"] as! [[String: Any]]
            #expect(data.map { $0["id"] as? String } == ["smollm2-135m", "smollm2-135m:a0", "smollm2-135m:a1"])
            #expect(data[1]["parent"] as? String == "smollm2-135m")
            #expect(data.allSatisfy { $0["object"] as? String == "model" && $0["created"] is Int && $0["owned_by"] is String })
            let one = try await server.get("/v1/models/smollm2-135m:a1")
            #expect(one.status == 200)
            #expect(one.json["id"] as? String == "smollm2-135m:a1")
            #expect(try await server.get("/v1/models/smollm2-135m:nope").status == 404)
            let health = try await server.get("/health")
            #expect(health.status == 200)
            #expect(health.json["model"] as? String == "smollm2-135m")
        }
    }

    @Test func greedyOutputThroughHTTPEqualsTheEngine() async throws {
        try await TestServer.with(adapters: 2) { server in
            let shared = try SharedModel.get()
            let question = "Describe a cat in one sentence."
            // Given the engine's own greedy answer with adapter a1
            let adapter = try LoRAAdapter.loadPEFT(directory: "\(server.data)/adapters/a1", base: shared.model.adapterShape)
            var direct = ""
            for await event in try server.engine.generate(GenerationRequest(
                promptTokens: try shared.chatTokens(question), adapter: adapter, maxTokens: 16)) {
                switch event {
                case .token(_, let text, _), .text(let text): direct += text
                case .finished: break
                }
            }
            // When the same request goes through HTTP
            let json = try await server.request("/v1/chat/completions", json: [
                "model": "smollm2-135m:a1", "temperature": 0, "max_tokens": 16,
                "messages": [["role": "user", "content": question]],
            ]).json
            // Then the text is identical and the response names the adapter
            #expect(json.choiceText() == direct)
            #expect(json["model"] as? String == "smollm2-135m:a1")
        }
    }

    @Test func sixteenConcurrentStreamsAcrossFourAdapters() async throws {
        try await TestServer.with(adapters: 4) { server in
            let results = try await withThrowingTaskGroup(of: (Int, Bool, String?).self) { group in
                for i in 0..<16 {
                    group.addTask {
                        let (status, events, done) = try await server.stream("/v1/chat/completions", json: [
                            "model": "smollm2-135m:a\(i % 4)", "max_tokens": 8, "stream": true, "seed": i,
                            "messages": [["role": "user", "content": "Tell me about number \(i)."]],
                        ])
                        let finish = events.flatMap { $0["choices"] as? [[String: Any]] ?? [] }
                            .compactMap { $0["finish_reason"] as? String }.last
                        return (status, done, finish)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 16)
            #expect(results.allSatisfy { $0.0 == 200 && $0.1 && $0.2 != nil })
            // (statistics are published after the step that yielded the last tokens)
            let deadline = ContinuousClock.now + .seconds(5)
            while server.engine.statistics.running > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(server.engine.statistics.running == 0)
            #expect(try await server.metric("graft_adapters_loaded") == 4)
        }
    }
}
