import Foundation
import Hummingbird

/// Writes server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk and a
/// final `data: [DONE]\n\n`. A write to a closed connection throws, which ends the
/// caller's loop and so cancels its generations.
struct SSEWriter {
    private var writer: any ResponseBodyWriter
    private let encoder: JSONEncoder

    init(_ writer: any ResponseBodyWriter) {
        self.writer = writer
        encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
    }

    mutating func send(_ chunk: some Encodable) async throws {
        var bytes = Array("data: ".utf8)
        bytes += try encoder.encode(chunk)
        bytes += Array("\n\n".utf8)
        try await writer.write(ByteBuffer(bytes: bytes))
    }

    consuming func finish() async throws {
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }

    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
}
