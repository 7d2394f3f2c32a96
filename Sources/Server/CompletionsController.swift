import Engine
import Foundation
import Hummingbird

/// `POST /v1/completions`: raw text continuation (no chat template), as one JSON object
/// or as server-sent chunks.
struct CompletionsController {
    let serving: Serving

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self).post(use: create)
    }

    struct CreateRequest: Decodable {
        var options: GenerationOptions
        var prompt: GenerationOptions.OneOrMany
        /// The number of top alternatives per token (0-5 in OpenAI's API; up to 20 here).
        var logprobs: Int?
        var echo: Bool?

        init(from decoder: any Decoder) throws {
            options = try GenerationOptions(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            prompt = try c.decode(GenerationOptions.OneOrMany.self, forKey: .prompt)
            logprobs = try c.decodeIfPresent(Int.self, forKey: .logprobs)
            echo = try c.decodeIfPresent(Bool.self, forKey: .echo)
        }

        enum CodingKeys: String, CodingKey { case prompt, logprobs, echo }
    }

    struct Completion: Encodable {
        var id: String
        var object = "text_completion"
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: UsageDTO?

        struct Choice: Encodable {
            var text: String
            var index: Int
            var logprobs: Logprobs?
            var finishReason: String?

            enum CodingKeys: String, CodingKey { case text, index, logprobs, finishReason = "finish_reason" }
        }
    }

    /// The legacy completions logprobs: parallel lists per generated token.
    struct Logprobs: Encodable {
        var tokens: [String]
        var tokenLogprobs: [Float]
        var topLogprobs: [[String: Float]]
        var textOffset: [Int]

        enum CodingKeys: String, CodingKey {
            case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
        }

        init(_ logprobs: [TokenLogprob], startOffset: Int, prompts: PromptFormatter) {
            tokens = logprobs.map { prompts.token($0.token).text }
            tokenLogprobs = logprobs.map(\.logprob)
            topLogprobs = logprobs.map { lp in
                Dictionary(lp.top.map { (prompts.token($0.token).text, $0.logprob) }, uniquingKeysWith: { first, _ in first })
            }
            var offset = startOffset
            textOffset = tokens.map { token in
                defer { offset += token.count }
                return offset
            }
        }
    }

    @Sendable func create(request: Request, context: AppRequestContext) async throws -> Response {
        try await serving.counted { model in
            let body = try await request.decodeJSON(as: CreateRequest.self, context: context)
            // One prompt per request for now: a list must hold exactly one string.
            let prompts = body.prompt.values
            guard prompts.count == 1, let prompt = prompts.first, !prompt.isEmpty else {
                throw OpenAIError.invalidRequest("prompt must be one non-empty string (a list of prompts is not supported yet)",
                                                 param: "prompt")
            }
            if body.echo == true { throw OpenAIError.invalidRequest("echo is not supported", param: "echo") }
            if let top = body.logprobs, !(0...20).contains(top) {
                throw OpenAIError.invalidRequest("logprobs must be between 0 and 20", param: "logprobs")
            }
            let resolved = try serving.resolver.resolve(body.options.model)
            model = resolved.id
            let tokens = serving.prompts.completionTokens(prompt)
            let generation = try body.options.generationRequest(
                promptTokens: tokens, adapter: resolved.adapter, topLogprobs: body.logprobs,
                contextLength: serving.contextLength, defaultMaxTokens: serving.defaultMaxTokens)
            let streams = try serving.generator.submit(generation, n: body.options.choiceCount, promptParam: "prompt")
            context.logger.info("completion", metadata: ["model": "\(resolved.id)", "prompt_tokens": "\(tokens.count)",
                                                         "n": "\(streams.count)", "stream": "\(body.options.isStreaming)",
                "user": "\(body.options.user ?? "")"])
            let id = ResponseID.make("cmpl-")
            let created = Date().unixSeconds
            if body.options.isStreaming {
                return stream(streams, id: id, created: created, model: resolved.id, includeUsage: body.options.includeUsage)
            }
            return try await complete(streams, id: id, created: created, model: resolved.id, wantsLogprobs: body.logprobs != nil)
        }
    }

    private func complete(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String,
                          wantsLogprobs: Bool) async throws -> Response {
        var choices = [CollectedChoice](repeating: .init(), count: streams.count)
        try await serving.generator.forEachEvent(of: streams, model: model) { index, event in choices[index].add(event) }
        return try .json(Completion(id: id, created: created, model: model, choices: choices.enumerated().map { index, choice in
            Completion.Choice(text: choice.text, index: index,
                              logprobs: wantsLogprobs ? Logprobs(choice.logprobs, startOffset: 0, prompts: serving.prompts) : nil,
                              finishReason: choice.finishReason?.rawValue)
        }, usage: UsageDTO(choices.compactMap(\.usage))))
    }

    private func stream(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String,
                        includeUsage: Bool) -> Response {
        let serving = serving
        return Response(status: .ok, headers: SSEWriter.headers, body: .init { writer in
            var sse = SSEWriter(writer)
            func chunk(_ index: Int, _ text: String, logprobs: Logprobs? = nil, finishReason: String? = nil) -> Completion {
                Completion(id: id, created: created, model: model,
                           choices: [.init(text: text, index: index, logprobs: logprobs, finishReason: finishReason)])
            }
            var usages: [Usage] = []
            var offsets = [Int](repeating: 0, count: streams.count)
            try await serving.generator.forEachEvent(of: streams, model: model) { index, event in
                switch event {
                case .token(_, let text, let logprob):
                    let logprobs = logprob.map { Logprobs([$0], startOffset: offsets[index], prompts: serving.prompts) }
                    offsets[index] += text.count
                    if !text.isEmpty || logprobs != nil { try await sse.send(chunk(index, text, logprobs: logprobs)) }
                case .text(let text):
                    try await sse.send(chunk(index, text))
                case .finished(let reason, let usage):
                    usages.append(usage)
                    try await sse.send(chunk(index, "", finishReason: reason.rawValue))
                }
            }
            if includeUsage {
                try await sse.send(Completion(id: id, created: created, model: model, choices: [], usage: UsageDTO(usages)))
            }
            try await sse.finish()
        })
    }
}
