import Engine
import Foundation
import Hummingbird
import Logging

public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The base model's public name; adapters are `NAME:adapter`.
    public var modelName: String
    /// Keys accepted as `Authorization: Bearer` on /v1; none configured means open.
    public var apiKey: String?
    public var adminKey: String?
    /// Prompt plus completion, in tokens: the engine's context limit.
    public var contextLength: Int
    /// Completion length when a request gives no max_tokens.
    public var defaultMaxTokens: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, modelName: String = "smollm2-135m", apiKey: String? = nil,
                adminKey: String? = nil, contextLength: Int, defaultMaxTokens: Int = 512) {
        self.host = host
        self.port = port
        self.modelName = modelName
        self.apiKey = apiKey
        self.adminKey = adminKey
        self.contextLength = contextLength
        self.defaultMaxTokens = defaultMaxTokens
    }
}

/// The HTTP application over an engine that already runs on its own thread. Run it in a
/// `ServiceGroup` followed by a `DrainService` sharing `gate` for graceful shutdown.
public func buildApplication(configuration: ServerConfiguration, engine: any InferenceEngine, adapters: AdapterStore,
                             prompts: PromptFormatter, gate: ShutdownGate = ShutdownGate(), metrics: ServerMetrics = ServerMetrics(),
                             logger: Logger) -> some ApplicationProtocol {
    let router = buildRouter(configuration: configuration, engine: engine, adapters: adapters, prompts: prompts,
                             gate: gate, metrics: metrics)
    return Application(router: router,
                       configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "graft"),
                       logger: logger)
}

func buildRouter(configuration: ServerConfiguration, engine: any InferenceEngine, adapters: AdapterStore,
                 prompts: PromptFormatter, gate: ShutdownGate, metrics: ServerMetrics) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: LogRequestsMiddleware(.info))
    router.add(middleware: OpenAIErrorMiddleware())
    router.add(middleware: APIKeyMiddleware(keys: Set([configuration.apiKey, configuration.adminKey].compactMap { $0 })))
    router.add(middleware: DrainMiddleware(gate: gate))

    let serving = Serving(generator: Generator(engine: engine, metrics: metrics),
                          resolver: ModelResolver(baseName: configuration.modelName, adapters: adapters),
                          prompts: prompts, contextLength: configuration.contextLength,
                          defaultMaxTokens: configuration.defaultMaxTokens)
    router.addRoutes(ChatCompletionsController(serving: serving).endpoints, atPath: "/v1/chat")
    router.addRoutes(CompletionsController(serving: serving).endpoints, atPath: "/v1/completions")
    router.addRoutes(ModelsController(baseName: configuration.modelName, adapters: adapters, started: Date()).endpoints,
                     atPath: "/v1/models")
    router.addRoutes(HealthController(baseName: configuration.modelName, engine: engine, adapters: adapters,
                                      metrics: metrics, gate: gate).endpoints)
    return router
}
