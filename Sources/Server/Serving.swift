import Hummingbird

/// What both completion controllers need: where requests go, how models resolve, how
/// prompts are tokenized and the context limits.
struct Serving: Sendable {
    let generator: Generator
    let resolver: ModelResolver
    let prompts: PromptFormatter
    let contextLength: Int
    let defaultMaxTokens: Int

    var metrics: ServerMetrics { generator.metrics }

    /// Runs `handle` and counts the request by the model it named and its final status.
    func counted(_ handle: (_ model: inout String) async throws -> Response) async throws -> Response {
        var model = "unknown"
        do {
            let response = try await handle(&model)
            metrics.requestFinished(model: model, status: response.status.code)
            return response
        } catch {
            let error = OpenAIError(error)
            metrics.requestFinished(model: model, status: error.status.code)
            throw error
        }
    }
}
