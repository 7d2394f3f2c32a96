import AsyncHTTPClient
import Engine
import Foundation
import NIOCore
import Testing

extension ServerTests {
    static var chat: [String: Any] { ["model": "smollm2-135m", "max_tokens": 2, "messages": [["role": "user", "content": "Hi"]]] }

    func with(_ base: [String: Any], _ changes: [String: Any]) -> [String: Any] {
        base.merging(changes) { _, new in new }
    }

    @Test func clientErrorsComeBackInOpenAIShape() async throws {
        try await TestServer.with(adapters: 1, corrupt: true) { server in
            // Malformed JSON
            let malformed = try await server.request("/v1/chat/completions", body: "{\"model\":")
            #expect(malformed.status == 400)
            #expect(malformed.error["type"] as? String == "invalid_request_error")
            #expect(malformed.error["message"] is String)
            // A field of the wrong type, and an invalid value: named in param
            let wrongType = try await server.request("/v1/chat/completions", json: with(Self.chat, ["temperature": "hot"]))
            #expect(wrongType.status == 400)
            #expect(wrongType.error["param"] as? String == "temperature")
            let badRole = try await server.request("/v1/chat/completions",
                                                   json: with(Self.chat, ["messages": [["role": "robot", "content": "x"]]]))
            #expect(badRole.status == 400)
            #expect(badRole.error["param"] as? String == "messages.0.role")
            let badTopP = try await server.request("/v1/completions", json: ["model": "smollm2-135m", "prompt": "a", "top_p": 0])
            #expect(badTopP.error["param"] as? String == "top_p")
            let missing = try await server.request("/v1/completions", json: ["model": "smollm2-135m"])
            #expect(missing.status == 400)
            #expect(missing.error["param"] as? String == "prompt")
            // Unknown model, unknown adapter, unknown version
            for model in ["gpt-4", "smollm2-135m:nope", "smollm2-135m:a0@2"] {
                let reply = try await server.request("/v1/chat/completions", json: with(Self.chat, ["model": model]))
                #expect(reply.status == 404, "\(model)")
                #expect(reply.error["code"] as? String == "model_not_found")
            }
            #expect(try await server.request("/v1/chat/completions", json: with(Self.chat, ["model": "smollm2-135m:a0@1"])).status == 200)
            // Body over 1 MiB
            let large = try await server.request("/v1/completions", body: String(repeating: "a", count: 1_200_000))
            #expect(large.status == 413)
            #expect(large.error["message"] is String)
            // Prompt plus max_tokens over the context
            let overflow = try await server.request("/v1/completions", json: ["model": "smollm2-135m", "prompt": "Hello", "max_tokens": 5000])
            #expect(overflow.status == 400)
            #expect(overflow.error["code"] as? String == "context_length_exceeded")
            #expect(overflow.error["param"] as? String == "prompt")
            // A corrupt adapter fails its own requests clearly, and the server keeps serving
            let broken = try await server.request("/v1/chat/completions", json: with(Self.chat, ["model": "smollm2-135m:broken"]))
            #expect(broken.status == 500)
            #expect(broken.error["code"] as? String == "adapter_load_failed")
            #expect((broken.error["message"] as? String)?.contains("adapter_config.json") == true)
            #expect(try await server.request("/v1/chat/completions", json: Self.chat).status == 200)
            // Unknown path
            #expect(try await server.get("/v1/nothing").status == 404)
            // Every failure was counted by model and status
            #expect(try await server.metric("graft_requests_total{model=\"smollm2-135m\",status=\"200\"}") == 1)
        }
    }

    @Test func apiKeyIsRequiredOnV1WhenConfigured() async throws {
        try await TestServer.with(apiKey: "sekret") { server in
            let missing = try await server.request("/v1/chat/completions", json: Self.chat)
            #expect(missing.status == 401)
            #expect(missing.error["code"] as? String == "invalid_api_key")
            let wrong = try await server.request("/v1/chat/completions", json: Self.chat, headers: ["authorization": "Bearer nope"])
            #expect(wrong.status == 401)
            #expect(try await server.request("/v1/chat/completions", json: Self.chat,
                                             headers: ["authorization": "Bearer sekret"]).status == 200)
            // Health and metrics stay open for probes
            #expect(try await server.get("/health").status == 200)
        }
    }

    @Test func fullQueueGives429AndStoppedEngineGives503() async throws {
        // Given an engine that accepts no waiting requests
        var configuration = TestServer.engineConfiguration
        configuration.maxWaiting = 0
        try await TestServer.with(engineConfiguration: configuration) { server in
            let full = try await server.request("/v1/chat/completions", json: Self.chat)
            #expect(full.status == 429)
            #expect(full.headers["retry-after"] != nil)
            #expect(full.error["type"] as? String == "rate_limit_error")
            // When the engine is shutting down
            server.engine.shutdown()
            let stopping = try await server.request("/v1/chat/completions", json: Self.chat)
            #expect(stopping.status == 503)
        }
    }

    @Test func clientDisconnectCancelsItsGeneration() async throws {
        try await TestServer.with { server in
            // Given a long streaming completion whose client goes away after the first chunk
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/v1/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: [
                "model": "smollm2-135m", "prompt": "Once upon a time", "max_tokens": 400, "temperature": 0, "stream": true,
            ])))
            let (firstChunk, signal) = AsyncStream.makeStream(of: Void.self)
            let client = Task {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                for try await _ in response.body { signal.yield() }
            }
            for await _ in firstChunk { break }
            // (statistics are published after the step that yielded the first token)
            var deadline = ContinuousClock.now + .seconds(5)
            while server.engine.statistics.running == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(server.engine.statistics.running == 1)
            client.cancel()
            // Then the engine drops the sequence long before 400 tokens could be generated
            deadline = ContinuousClock.now + .seconds(5)
            while server.engine.statistics.running > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.engine.statistics.running == 0)
            #expect(try await server.metric("graft_generations_cancelled_total") == 1)
        }
    }
}
