import Foundation
import Testing

extension ServerTests {
    @Test func completionPromptsComeInOpenAIsFourForms() async throws {
        try await TestServer.with { server in
            let tokenizer = try SharedModel.get().tokenizer
            let (first, second) = ("The capital of France is", "Two plus two equals")
            func greedy(_ prompt: Any, n: Int = 1, stream: Bool = false) -> [String: Any] {
                ["model": "smollm2-135m", "prompt": prompt, "max_tokens": 5, "temperature": 0, "n": n, "stream": stream]
            }
            // Given each prompt's greedy answer alone
            let alone = try await [first, second].asyncMap { try await server.request("/v1/completions", json: greedy($0)).json }
            let answers = alone.map { $0.choiceText() }
            let promptTokens = alone.map { ($0["usage"] as! [String: Any])["prompt_tokens"] as! Int }
            #expect(answers[0] != answers[1])

            // When both are sent as a list of strings with n = 2
            let listed = try await server.request("/v1/completions", json: greedy([first, second], n: 2)).json
            // Then choice p·n + i answers prompt p, as alone, and usage counts each prompt once
            let choices = listed["choices"] as! [[String: Any]]
            #expect(choices.map { $0["index"] as? Int } == [0, 1, 2, 3])
            #expect((0..<4).map { listed.choiceText($0) } == [answers[0], answers[0], answers[1], answers[1]])
            let usage = listed["usage"] as! [String: Any]
            #expect(usage["prompt_tokens"] as? Int == promptTokens[0] + promptTokens[1])
            #expect(usage["total_tokens"] as? Int == (usage["prompt_tokens"] as! Int) + (usage["completion_tokens"] as! Int))

            // And token ids, alone or listed, are the same prompts
            let ids = [first, second].map { tokenizer.encode($0, parseSpecialTokens: false) }
            #expect(try await server.request("/v1/completions", json: greedy(ids[0])).json.choiceText() == answers[0])
            let idLists = try await server.request("/v1/completions", json: greedy(ids)).json
            #expect([idLists.choiceText(0), idLists.choiceText(1)] == answers)

            // And streaming a list labels each chunk with its choice
            let (status, events, done) = try await server.stream("/v1/completions", json: greedy([first, second], stream: true))
            #expect(status == 200 && done)
            var streamed = ["", ""]
            for choice in events.flatMap({ $0["choices"] as! [[String: Any]] }) {
                streamed[choice["index"] as! Int] += choice["text"] as! String
            }
            #expect(streamed == answers.map { $0 ?? "-" })
        }
    }

    @Test func badPromptsAreRefusedByName() async throws {
        try await TestServer.with { server in
            func refusal(_ prompt: Any, n: Int = 1) async throws -> (status: Int, param: String?, message: String) {
                let reply = try await server.request("/v1/completions", json: ["model": "smollm2-135m", "prompt": prompt, "n": n])
                return (reply.status, reply.error["param"] as? String, reply.error["message"] as? String ?? "")
            }
            let empty = try await refusal([String]())
            #expect(empty.status == 400 && empty.param == "prompt")
            let emptyIds = try await refusal([[1, 2], [Int]()])
            #expect(emptyIds.status == 400 && emptyIds.param == "prompt.1" && emptyIds.message.contains("empty"))
            let outside = try await refusal([19556, 49152])
            #expect(outside.status == 400 && outside.message.contains("49152"))
            let negative = try await refusal([-1])
            #expect(negative.status == 400)
            let fractional = try await refusal([1.5, 2])
            #expect(fractional.status == 400 && fractional.param == "prompt" && fractional.message.contains("token ids"))
            let mixed = try await refusal(["a", 1])
            #expect(mixed.status == 400 && mixed.param == "prompt")
            let tooMany = try await refusal(Array(repeating: "a", count: 33))
            #expect(tooMany.status == 400 && tooMany.param == "prompt")
            let tooManyChoices = try await refusal(Array(repeating: "a", count: 5), n: 16)
            #expect(tooManyChoices.status == 400 && tooManyChoices.param == "n")
            // And nothing was left running: the server answers the next request
            let fine = try await server.request("/v1/completions", json: ["model": "smollm2-135m", "prompt": ["a", "b"], "max_tokens": 1])
            #expect(fine.status == 200)
        }
    }

    @Test func developerMessagesActAsSystemMessages() async throws {
        try await TestServer.with { server in
            func answer(_ role: String) async throws -> String? {
                try await server.request("/v1/chat/completions", json: [
                    "model": "smollm2-135m", "temperature": 0, "max_tokens": 12,
                    "messages": [["role": role, "content": "Answer in French."], ["role": "user", "content": "Say hello."]],
                ]).json.choiceText()
            }
            let system = try await answer("system")
            #expect(system != nil)
            #expect(try await answer("developer") == system)
        }
    }
}

extension Array {
    /// `transform` applied to each element in order, awaiting each.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
