import Engine
import Hummingbird

/// `GET /health` for load balancers and `GET /metrics` for Prometheus; neither needs a key.
struct HealthController {
    let baseName: String
    let engine: any InferenceEngine
    let adapters: AdapterStore
    let metrics: ServerMetrics
    let gate: ShutdownGate

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get("health", use: health)
            .get("metrics", use: scrape)
    }

    struct Health: Encodable {
        var status: String
        var model: String
        var adapters: Int
        var running: Int
        var waiting: Int
    }

    @Sendable func health(request: Request, context: AppRequestContext) async throws -> Response {
        let statistics = engine.statistics
        var response = try Response.json(Health(status: gate.isDraining ? "draining" : "ok", model: baseName,
                                                adapters: adapters.names.count, running: statistics.running,
                                                waiting: statistics.waiting))
        // A draining replica reports 503 so the load balancer sends traffic elsewhere.
        if gate.isDraining { response.status = .serviceUnavailable }
        return response
    }

    @Sendable func scrape(request: Request, context: AppRequestContext) async throws -> Response {
        let text = metrics.render(engine: engine.statistics, adaptersLoaded: adapters.loadedCount)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
