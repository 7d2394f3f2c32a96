import HTTPTypes
import Hummingbird

/// Turns every error into OpenAI's error object, and tags responses with the request id
/// that the structured logs carry.
struct OpenAIErrorMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: AppRequestContext,
                next: (Request, AppRequestContext) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = context.id
            return response
        } catch {
            let openAIError = OpenAIError(error)
            if openAIError.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(openAIError.message)"])
            }
            var response = try openAIError.response(from: request, context: context)
            response.headers[.requestID] = context.id
            return response
        }
    }
}

/// Bearer-key check on `/v1/*` when a key is configured; either key opens them (the
/// admin key will also open admin routes).
struct APIKeyMiddleware: RouterMiddleware {
    let keys: Set<String>

    func handle(_ request: Request, context: AppRequestContext,
                next: (Request, AppRequestContext) async throws -> Response) async throws -> Response {
        if !keys.isEmpty, request.uri.path.hasPrefix("/v1/") {
            let header = request.headers[.authorization] ?? ""
            guard header.hasPrefix("Bearer "), keys.contains(String(header.dropFirst("Bearer ".count))) else {
                throw OpenAIError.unauthorized
            }
        }
        return try await next(request, context)
    }
}

/// New generations get 503 once graceful shutdown has begun; listings still answer.
struct DrainMiddleware: RouterMiddleware {
    let gate: ShutdownGate

    func handle(_ request: Request, context: AppRequestContext,
                next: (Request, AppRequestContext) async throws -> Response) async throws -> Response {
        if request.method == .post, gate.isDraining { throw OpenAIError.shuttingDown }
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("x-request-id")!
}
