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
        var prompts: [CompletionPrompt]
        /// The number of top alternatives per token (0-5 in OpenAI's API; up to 20 here).
        var logprobs: Int?
        var echo: Bool?

        init(from decoder: any Decoder) throws {
            options = try GenerationOptions(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard c.contains(.prompt) else {
                throw DecodingError.keyNotFound(CodingKeys.prompt, .init(codingPath: decoder.codingPath, debugDescription: "prompt"))
            }
            prompts = try CompletionPrompt.decodeList(from: c.superDecoder(forKey: .prompt))
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
            guard (1...CompletionPrompt.maxPrompts).contains(body.prompts.count) else {
                throw OpenAIError.invalidRequest("prompt must hold 1 to \(CompletionPrompt.maxPrompts) prompts", param: "prompt")
            }
            guard body.prompts.count * body.options.choiceCount <= CompletionPrompt.maxChoices else {
                throw OpenAIError.invalidRequest("prompts times n must be at most \(CompletionPrompt.maxChoices)", param: "n")
            }
            if body.echo == true { throw OpenAIError.invalidRequest("echo is not supported", param: "echo") }
            if let top = body.logprobs, !(0...20).contains(top) {
                throw OpenAIError.invalidRequest("logprobs must be between 0 and 20", param: "logprobs")
            }
            let resolved = try serving.resolver.resolve(body.options.model)
            model = resolved.id
            // Choice p·n + i is prompt p's i-th, as OpenAI numbers them; all are submitted
            // or none (streams already submitted are dropped with the error, cancelling them).
            var streams: [AsyncStream<GenerationEvent>] = []
            var promptTokens = 0
            for (p, prompt) in body.prompts.enumerated() {
                let param = body.prompts.count == 1 ? "prompt" : "prompt.\(p)"
                let tokens: [Int]
                switch prompt {
                case .text(let text): tokens = serving.prompts.completionTokens(text)
                case .tokens(let ids): tokens = ids
                }
                guard !tokens.isEmpty else { throw OpenAIError.invalidRequest("the prompt is empty", param: param) }
                let generation = try body.options.generationRequest(
                    promptTokens: tokens, adapter: resolved.adapter, topLogprobs: body.logprobs,
                    contextLength: serving.contextLength, defaultMaxTokens: serving.defaultMaxTokens)
                streams += try serving.generator.submit(generation, n: body.options.choiceCount, promptParam: param)
                promptTokens += tokens.count
            }
            context.logger.info("completion", metadata: ["model": "\(resolved.id)", "prompt_tokens": "\(promptTokens)",
                                                         "n": "\(streams.count)", "stream": "\(body.options.isStreaming)",
                "user": "\(body.options.user ?? "")"])
            let id = ResponseID.make("cmpl-")
            let created = Date().unixSeconds
            if body.options.isStreaming {
                return stream(streams, id: id, created: created, model: resolved.id, promptTokens: promptTokens,
                              includeUsage: body.options.includeUsage)
            }
            return try await complete(streams, id: id, created: created, model: resolved.id, promptTokens: promptTokens,
                                      wantsLogprobs: body.logprobs != nil)
        }
    }

    private func complete(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String,
                          promptTokens: Int, wantsLogprobs: Bool) async throws -> Response {
        var choices = [CollectedChoice](repeating: .init(), count: streams.count)
        try await serving.generator.forEachEvent(of: streams, model: model) { index, event in choices[index].add(event) }
        return try .json(Completion(id: id, created: created, model: model, choices: choices.enumerated().map { index, choice in
            Completion.Choice(text: choice.text, index: index,
                              logprobs: wantsLogprobs ? Logprobs(choice.logprobs, startOffset: 0, prompts: serving.prompts) : nil,
                              finishReason: choice.finishReason?.rawValue)
        }, usage: UsageDTO(promptTokens: promptTokens, choices.compactMap(\.usage))))
    }

    private func stream(_ streams: [AsyncStream<GenerationEvent>], id: String, created: Int, model: String,
                        promptTokens: Int, includeUsage: Bool) -> Response {
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
                try await sse.send(Completion(id: id, created: created, model: model, choices: [], usage: UsageDTO(promptTokens: promptTokens, usages)))
            }
            try await sse.finish()
        })
    }
}
