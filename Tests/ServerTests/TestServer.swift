import Adapters
import AsyncHTTPClient
import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Model
import ModelFormats
import NIOCore
import Server
import Testing
import Tokenization

/// The real model, loaded once for every test in the process.
final class SharedModel: Sendable {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let chatTemplate: ChatTemplate

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private init() throws {
        let path = ProcessInfo.processInfo.environment["GRAFT_MODEL"]
            ?? Self.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("model not found at \(path): run scripts/setup.sh")
            throw CocoaError(.fileNoSuchFile)
        }
        let gguf = try GGUFFile(path: path)
        model = try LlamaModel(gguf: gguf)
        tokenizer = try Tokenizer(vocabulary: TokenizerVocabulary(gguf: gguf))
        chatTemplate = try ChatTemplate(source: gguf.metadata["tokenizer.chat_template"]!.string!)
    }

    private static let loaded = Result { try SharedModel() }
    static func get() throws -> SharedModel { try loaded.get() }

    /// Prompt tokens of one user message, rendered as the server renders chats.
    func chatTokens(_ user: String) throws -> [Int] {
        let text = try chatTemplate.render(messages: [ChatMessage(role: "user", content: user)], addGenerationPrompt: true,
                                           bosToken: tokenizer.bosTokenId.map { tokenizer.decode([$0]) } ?? "",
                                           eosToken: tokenizer.eosTokenId.map { tokenizer.decode([$0]) } ?? "")
        return tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
    }
}

/// A data folder in a temporary directory with random adapters `a0`, `a1`, … and
/// optionally a corrupt one named `broken`.
struct TestDataDirectory {
    let path: String

    init(adapters: Int, corrupt: Bool = false) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-server-\(UUID().uuidString)").path
        let shape = try SharedModel.get().model.adapterShape
        for i in 0..<adapters {
            try LoRAAdapter.random(shape: shape, rank: 4, seed: UInt64(i + 1))
                .savePEFT(directory: "\(path)/adapters/a\(i)", baseModelName: "smollm2-135m")
        }
        if corrupt {
            try FileManager.default.createDirectory(atPath: "\(path)/adapters/broken", withIntermediateDirectories: true)
            try Data("{ not json".utf8).write(to: URL(fileURLWithPath: "\(path)/adapters/broken/adapter_config.json"))
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func adapterDirectory(_ name: String) -> String { "\(path)/adapters/\(name)" }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A running server (real model, real engine, real HTTP on 127.0.0.1) and a client for it.
struct TestServer: Sendable {
    let port: Int
    let engine: BatchEngine
    let data: String

    static let engineConfiguration = EngineConfiguration(maxRunningSequences: 16, maxTokensPerStep: 256, maxContext: 512)

    /// Starts a server on a free port, runs `body`, then shuts the server and engine down.
    static func with(adapters: Int = 0, corrupt: Bool = false, apiKey: String? = nil,
                     engineConfiguration: EngineConfiguration = engineConfiguration,
                     _ body: @Sendable (TestServer) async throws -> Void) async throws {
        let shared = try SharedModel.get()
        let data = try TestDataDirectory(adapters: adapters, corrupt: corrupt)
        defer { data.remove() }
        let engine = BatchEngine(model: shared.model, tokenizer: shared.tokenizer, configuration: engineConfiguration)
        defer { engine.shutdown() }
        var logger = Logger(label: "graft-test")
        logger.logLevel = .warning
        let app = buildApplication(
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, apiKey: apiKey,
                                               contextLength: engine.configuration.maxContext, defaultMaxTokens: 16),
            engine: engine,
            adapters: try AdapterStore(dataDirectory: data.path, shape: shared.model.adapterShape),
            prompts: PromptFormatter(tokenizer: shared.tokenizer, chatTemplate: shared.chatTemplate),
            logger: logger)
        try await app.test(.live) { client in
            try await body(TestServer(port: client.port!, engine: engine, data: data.path))
        }
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var text: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:] }
        var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    }

    func request(_ path: String, method: String = "POST", json: [String: Any]? = nil, body: String? = nil,
                 headers: [String: String] = [:]) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method)
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json { request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code),
                     headers: Dictionary(response.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a }),
                     text: String(buffer: buffer))
    }

    func get(_ path: String) async throws -> Reply { try await request(path, method: "GET") }

    /// The JSON objects of an SSE response, and whether it ended with `data: [DONE]`.
    func stream(_ path: String, json: [String: Any]) async throws -> (status: Int, events: [[String: Any]], done: Bool) {
        let reply = try await request(path, json: json)
        var events: [[String: Any]] = []
        var done = false
        for block in reply.text.components(separatedBy: "\n\n") where block.hasPrefix("data: ") {
            let payload = block.dropFirst("data: ".count)
            if payload == "[DONE]" { done = true; continue }
            events.append(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as! [String: Any])
        }
        return (reply.status, events, done)
    }

    /// The value of a metric line such as `graft_generations_cancelled_total`, 0 when absent.
    func metric(_ name: String) async throws -> Double {
        let text = try await get("/metrics").text
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { Double($0.split(separator: " ").last!) } ?? 0
    }
}

extension [String: Any] {
    /// choices[i].message.content or choices[i].text.
    func choiceText(_ i: Int = 0) -> String? {
        guard let choices = self["choices"] as? [[String: Any]], choices.count > i else { return nil }
        return (choices[i]["message"] as? [String: Any])?["content"] as? String ?? choices[i]["text"] as? String
    }
}
