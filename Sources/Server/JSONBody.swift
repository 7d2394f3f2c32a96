import Foundation
import Hummingbird

extension Request {
    /// The body decoded as `T`, or the OpenAI error naming what is wrong: 413 past the
    /// size limit, 400 for malformed JSON or a field of the wrong type.
    func decodeJSON<T: Decodable>(as type: T.Type, context: AppRequestContext) async throws(OpenAIError) -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: context.maxUploadSize)
        } catch {
            throw OpenAIError(error)
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw OpenAIError(error)
        } catch {
            throw .invalidRequest("The body is not valid JSON")
        }
    }
}

extension Response {
    /// A 200 JSON response; `JSONEncoder` errors cannot happen for these plain DTOs.
    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
