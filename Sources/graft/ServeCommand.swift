import Adapters
import ArgumentParser
import Engine
import Foundation
import Kernels
import Logging
import Model
import Server
import ServiceLifecycle

/// Serves the OpenAI-compatible API for the base model and every adapter under
/// `DATA/adapters/`, until SIGINT or SIGTERM (requests in flight finish first).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the OpenAI-compatible HTTP API for the base model and its adapters.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Data folder; adapters are read from DATA/adapters/NAME/ (PEFT files).")
    var data = "./data"

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8080

    @Option(name: .customLong("model-name"), help: "Public name of the base model; adapters are NAME:adapter.")
    var modelName = "smollm2-135m"

    @Option(name: .customLong("api-key"), help: "Require this Bearer key on /v1 (default: $GRAFT_API_KEY; none: open).")
    var apiKey: String?

    @Option(name: .customLong("admin-key"), help: "An admin Bearer key, also accepted on /v1 (default: $GRAFT_ADMIN_KEY).")
    var adminKey: String?

    @Option(name: .customLong("max-context"), help: "Longest prompt plus completion, in tokens.")
    var maxContext = 2048

    @Option(name: .customLong("max-running"), help: "Sequences decoding at once.")
    var maxRunning = 32

    @Option(name: .customLong("adapter-cache-mb"),
            help: "Memory for loaded adapters, in MiB; least recently used ones are dropped beyond it (a rank-16 adapter on all seven projections of SmolLM2-135M takes 9.3 MiB).")
    var adapterCacheMB = 512

    @Option(name: .customLong("kv-cache-mb"),
            help: "Memory for the KV cache, in MiB (default: room for every running sequence at half of --max-context on average, 1440 MiB with the defaults and an f32 cache, 720 MiB with --kv-cache f16); --kv-cache f16 holds twice the positions in the same memory.")
    var kvCacheMB: Int?

    @Option(name: .customLong("max-adapter-rank"),
            help: "Largest LoRA rank served; requests naming an adapter with a larger rank in any projection are refused (scratch memory grows with it).")
    var maxAdapterRank = 64

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535") }
        if maxContext < 16 || maxRunning < 1 { throw ValidationError("--max-context >= 16 and --max-running >= 1") }
        if adapterCacheMB < 0 { throw ValidationError("--adapter-cache-mb >= 0") }
        if maxAdapterRank < 1 { throw ValidationError("--max-adapter-rank >= 1") }
        if let kvCacheMB, kvCacheMB < 1 { throw ValidationError("--kv-cache-mb >= 1") }
    }

    /// The engine's limits. A KV budget too small for one sequence of --max-context is
    /// refused: the engine would turn away every request longer than its cache, below
    /// the context length the server advertises.
    func engineConfiguration(_ loaded: LoadedModel) throws -> EngineConfiguration {
        var configuration = EngineConfiguration(maxRunningSequences: maxRunning, maxContext: maxContext,
                                                maxAdapterRank: maxAdapterRank, kvPrecision: loaded.kvPrecision)
        let c = loaded.model.config, blockSize = configuration.blockSize
        if let kvCacheMB {
            let blocks = KVCache.blocks(fitting: kvCacheMB << 20, config: c, blockSize: blockSize,
                                        precision: loaded.kvPrecision)
            let needed = (min(maxContext, c.contextLength) + blockSize - 1) / blockSize
            guard blocks >= needed else {
                let perBlock = KVCache.bytesPerPosition(config: c, precision: loaded.kvPrecision) * blockSize
                throw CommandError("--kv-cache-mb \(kvCacheMB) holds \(blocks) blocks of \(blockSize) positions; one sequence of --max-context \(maxContext) needs \(needed) (at least \((needed * perBlock + (1 << 20) - 1) >> 20) MiB with a \(loaded.kvPrecision.rawValue) cache)")
            }
            configuration.kvBlocks = blocks
        }
        let bytes = configuration.kvBlocks * blockSize * KVCache.bytesPerPosition(config: c, precision: loaded.kvPrecision)
        log(String(format: "KV cache: %d blocks of %d positions, %@, %.0f MiB", configuration.kvBlocks, blockSize,
                   loaded.kvPrecision.rawValue, Double(bytes) / 1_048_576))
        return configuration
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let loaded = try LoadedModel(options: options)
        let adapters = try AdapterStore(dataDirectory: data, shape: loaded.model.adapterShape,
                                        cacheBytes: adapterCacheMB << 20, precision: loaded.adapterPrecision)
        let engine = BatchEngine(model: loaded.model, tokenizer: loaded.tokenizer,
                                 configuration: try engineConfiguration(loaded))
        var logger = Logger(label: "graft")
        logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let configuration = ServerConfiguration(
            host: host, port: port, modelName: modelName,
            apiKey: apiKey ?? environment["GRAFT_API_KEY"], adminKey: adminKey ?? environment["GRAFT_ADMIN_KEY"],
            contextLength: engine.configuration.maxContext)
        let gate = ShutdownGate()
        let app = buildApplication(configuration: configuration, engine: engine, adapters: adapters,
                                   prompts: PromptFormatter(tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate),
                                   gate: gate, logger: logger)
        logger.info("serving", metadata: ["model": "\(modelName)", "adapters": "\(adapters.names.joined(separator: ","))",
                                          "address": "\(host):\(port)"])
        let group = ServiceGroup(configuration: .init(
            services: [app, DrainService(gate: gate, engine: engine, stopEngine: engine.shutdown)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
