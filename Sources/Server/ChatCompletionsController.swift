import Engine
import Foundation
import Hummingbird
import Tokenization

/// `POST /v1/chat/completions`: messages through the model's chat template, answered as
/// one JSON object or as server-sent chunks.
struct ChatCompletionsController {
    let serving: Serving

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self).post("completions", use: create)
    }

    struct CreateRequest: Decodable {
        var options: GenerationOptions
        var messages: [Message]
        var logprobs: Bool?
        var topLogprobs: Int?

        struct Message: Decodable {
            var role: String
            var content: String

            /// `content` is a string, or a list of parts of which only text is supported.
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                role = try c.decode(String.self, forKey: .role)
                if let text = try? c.decode(String.self, forKey: .content) {
                    content = text
                } else {
                    content = try c.decode([Part].self, forKey: .content).map(\.text).joined()
                }
            }

            struct Part: Decodable {
                var type: String
                var text: String
            }

            enum CodingKeys: String, CodingKey { case role, content }
        }

        init(from decoder: any Decoder) throws {
            options = try GenerationOptions(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            messages = try c.decode([Message].self, forKey: .messages)
            logprobs = try c.decodeIfPresent(Bool.self, forKey: .logprobs)
            topLogprobs = try c.decodeIfPresent(Int.self, forKey: .topLogprobs)
        }

        enum CodingKeys: String, CodingKey { case messages, logprobs, topLogprobs = "top_logprobs" }
    }

    struct Completion: Encodable {
        var id: String
        var object = "chat.completion"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: UsageDTO

        struct Choice: Encodable {
            var index: Int
            var message: Message
            var logprobs: Logprobs?
            var finishReason: String?

            enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }
        }

        struct Message: Encodable {
            var role = "assistant"
            var content: String
        }
    }

    struct Chunk: Encodable {
        var id: String
        var object = "chat.completion.chunk"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: UsageDTO?

        struct Choice: Encodable {
            var index: Int
            var delta: Delta
            var logprobs: Logprobs?
            var finishReason: String?

            enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }
        }

        struct Delta: Encodable {
            var role: String?
            var content: String?
        }
    }

    struct Logprobs: Encodable {
        var content: [Entry]

        struct Entry: Encodable {
            var token: String
            var logprob: Float
            var bytes: [UInt8]
            var topLogprobs: [Alternative]

            enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
        }

        struct Alternative: Encodable {
            var token: String
            var logprob: Float
            var bytes: [UInt8]
        }

        init(_ logprobs: [TokenLogprob], prompts: PromptFormatter) {
            content = logprobs.map { lp in
                let token = prompts.token(lp.token)
                return Entry(token: token.text, logprob: lp.logprob, bytes: token.bytes, topLogprobs: lp.top.map {
                    let alternative = prompts.token($0.token)
                    return Alternative(token: alternative.text, logprob: $0.logprob, bytes: alternative.bytes)
                })
            }
        }
    }

    /// OpenAI's developer role, which its newer models take in place of system, is given
    /// to the template as system: chat templates know only the older name.
    static let roles: Set<String> = ["system", "developer", "user", "assistant"]

    @Sendable func create(request: Request, context: AppRequestContext) async throws -> Response {
        try await serving.counted { model in
            let body = try await request.decodeJSON(as: CreateRequest.self, context: context)
            guard !body.messages.isEmpty else { throw OpenAIError.invalidRequest("messages must not be empty", param: "messages") }
            for (i, message) in body.messages.enumerated() where !Self.roles.contains(message.role) {
                throw OpenAIError.invalidRequest("Invalid role '\(message.role)': expected system, developer, user or assistant",
                                                 param: "messages.\(i).role")
            }
            let topLogprobs = try Self.topLogprobs(body)
            let resolved = try serving.resolver.resolve(body.options.model)
            model = resolved.id
            let tokens = try serving.prompts.chatTokens(body.messages.map {
                ChatMessage(role: $0.role == "developer" ? "system" : $0.role, content: $0.content)
            })
            let generation = try body.options.generationRequest(
                promptTokens: tokens, adapter: resolved.adapter, topLogprobs: topLogprobs,
                contextLength: serving.contextLength, defaultMaxTokens: serving.defaultMaxTokens)
            let streams = try serving.generator.submit(generation, n: body.options.choiceCount, promptParam: "messages")
            context.logger.info("chat completion", metadata: ["model": "\(resolved.id)", "prompt_tokens": "\(tokens.count)",
                                                              "n": "\(streams.count)", "stream": "\(body.options.isStreaming)",
                "user": "\(body.options.user ?? "")"])
            let id = ResponseID.make("chatcmpl-")
            let created = Date().unixSeconds
            if body.options.isStreaming {
                return stream(streams, id: id, created: created, model: resolved.id, includeUsage: body.options.includeUsage)
            }
            return try await complete(streams, id: id, created: created, model: resolved.id)
        }
    }

    /// `logprobs: true` turns logprobs on; `top_logprobs` (0-20) needs it.
    private static func topLogprobs(_ body: CreateRequest) throws(OpenAIError) -> Int? {
        if let top = body.topLogprobs {
            guard body.logprobs == true else { throw .invalidRequest("top_logprobs requires logprobs to be true", param: "top_logprobs") }
            guard (0...20).contains(top) else { throw .invalidRequest("top_logprobs must be between 0 and 20", param: "top_logprobs") }
            return top
        }
        return body.logprobs == true ? 0 : nil
    }

    private func complete(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String) async throws -> Response {
        var choices = [CollectedChoice](repeating: .init(), count: streams.count)
        try await serving.generator.forEachEvent(of: streams, model: model) { index, event in choices[index].add(event) }
        let usages = choices.compactMap(\.usage)
        return try .json(Completion(id: id, created: created, model: model, choices: choices.enumerated().map { index, choice in
            Completion.Choice(index: index, message: .init(content: choice.text),
                              logprobs: choice.usage != nil && !choice.logprobs.isEmpty ? Logprobs(choice.logprobs, prompts: serving.prompts) : nil,
                              finishReason: choice.finishReason?.rawValue)
        }, usage: UsageDTO(usages)))
    }

    private func stream(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String,
                        includeUsage: Bool) -> Response {
        let serving = serving
        return Response(status: .ok, headers: SSEWriter.headers, body: .init { writer in
            var sse = SSEWriter(writer)
            func chunk(_ choices: [Chunk.Choice], usage: UsageDTO? = nil) -> Chunk {
                Chunk(id: id, created: created, model: model, choices: choices, usage: usage)
            }
            for index in streams.indices {
                try await sse.send(chunk([.init(index: index, delta: .init(role: "assistant", content: ""))]))
            }
            var usages: [Usage] = []
            try await serving.generator.forEachEvent(of: streams, model: model) { index, event in
                switch event {
                case .token(_, let text, let logprob):
                    let logprobs = logprob.map { Logprobs([$0], prompts: serving.prompts) }
                    if !text.isEmpty || logprobs != nil {
                        try await sse.send(chunk([.init(index: index, delta: .init(content: text), logprobs: logprobs)]))
                    }
                case .text(let text):
                    try await sse.send(chunk([.init(index: index, delta: .init(content: text))]))
                case .finished(let reason, let usage):
                    usages.append(usage)
                    try await sse.send(chunk([.init(index: index, delta: .init(), finishReason: reason.rawValue)]))
                }
            }
            if includeUsage { try await sse.send(chunk([], usage: UsageDTO(usages))) }
            try await sse.finish()
        })
    }
}
