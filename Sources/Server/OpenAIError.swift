import Foundation
import Hummingbird

/// Every failure a client sees, in OpenAI's shape (`{"error": {"message", "type",
/// "param", "code"}}`), so OpenAI clients raise their usual exception types.
public struct OpenAIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    /// The request field at fault ("messages", "temperature"), when there is one.
    public var param: String?
    public var code: String?
    public var headers: HTTPFields = [:]

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func modelNotFound(_ model: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "The model '\(model)' does not exist", type: "invalid_request_error",
                    param: "model", code: "model_not_found")
    }

    static let unauthorized = OpenAIError(status: .unauthorized, message: "Missing or invalid API key (send 'Authorization: Bearer <key>')",
                                          type: "invalid_request_error", code: "invalid_api_key")

    static let shuttingDown = OpenAIError(status: .serviceUnavailable, message: "The server is shutting down; retry on another replica",
                                          type: "server_error", code: "shutting_down")

    static var queueFull: OpenAIError {
        var error = OpenAIError(status: .tooManyRequests, message: "The request queue is full; retry later",
                                type: "rate_limit_error", code: "queue_full")
        error.headers[.retryAfter] = "1"
        return error
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?

            // OpenAI sends null rather than omitting param and code.
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)
                try c.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }

        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(error: .init(message: message, type: type, param: param, code: code))
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(body))))
    }
}

extension OpenAIError {
    /// Converts whatever a route or the framework threw, so that even a 404 for an
    /// unknown path or a 413 for a large body comes back in OpenAI's shape.
    init(_ error: any Error) {
        switch error {
        case let error as OpenAIError:
            self = error
        case let error as DecodingError:
            self = .invalidRequest(error.clientMessage, param: error.fieldPath)
        case let error as any HTTPResponseError:
            let message: String
            switch error.status {
            case .contentTooLarge: message = "The request body is too large"
            case .notFound: message = "Unknown path"
            case .methodNotAllowed: message = "Method not allowed"
            default: message = error.status.reasonPhrase
            }
            self.init(status: error.status, message: message,
                      type: error.status.code >= 500 ? "server_error" : "invalid_request_error")
        default:
            self.init(status: .internalServerError, message: "Internal error: \(error)", type: "server_error")
        }
    }
}

extension DecodingError {
    /// The JSON path of the field that failed to decode ("messages.0.role").
    var fieldPath: String? {
        let path: [any CodingKey]
        switch self {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): path = c.codingPath
        case .keyNotFound(let key, let c): path = c.codingPath + [key]
        @unknown default: return nil
        }
        let names = path.map { $0.intValue.map(String.init) ?? $0.stringValue }
        return names.isEmpty ? nil : names.joined(separator: ".")
    }

    var clientMessage: String {
        switch self {
        case .typeMismatch(let type, _): return "Invalid type for '\(fieldPath ?? "body")': expected \(Self.jsonName(type))"
        case .valueNotFound: return "Missing value for '\(fieldPath ?? "body")'"
        case .keyNotFound: return "Missing required parameter: '\(fieldPath ?? "body")'"
        case .dataCorrupted(let c):
            return fieldPath.map { "Invalid value for '\($0)': \(c.debugDescription)" } ?? "The body is not valid JSON"
        @unknown default: return "Invalid request body"
        }
    }

    private static func jsonName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        default: return "\(type)"
        }
    }
}
