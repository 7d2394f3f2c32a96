import Engine
import Prometheus

/// The server's Prometheus metrics. Each app has its own registry (no global metrics
/// system), so several servers in one test process do not share counters. Engine and
/// adapter gauges are read when scraped rather than pushed, so they are never stale.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    private static let latencyBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init() {}

    func requestFinished(model: String, status: Int) {
        registry.makeCounter(
            descriptor: .init(namespace: "graft", metricName: "requests", unitName: "total", helpText: "Requests by model and HTTP status"),
            labels: [("model", model), ("status", String(status))]
        ).increment()
    }

    func tokenGenerated(model: String) {
        registry.makeCounter(
            descriptor: .init(namespace: "graft", metricName: "generated_tokens", unitName: "total", helpText: "Tokens generated"),
            labels: [("model", model)]
        ).increment()
    }

    func generationCancelled() {
        registry.makeCounter(
            descriptor: .init(namespace: "graft", metricName: "generations_cancelled", unitName: "total",
                              helpText: "Generations ended early because the client went away")
        ).increment()
    }

    func timeToFirstToken(_ duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "graft", metricName: "time_to_first_token", unitName: "seconds",
                              helpText: "From submitting a generation to its first token"),
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    func timePerOutputToken(_ duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "graft", metricName: "time_per_output_token", unitName: "seconds",
                              helpText: "Between consecutive tokens of one generation"),
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// The exposition text, with gauges refreshed from the engine and adapter store.
    func render(engine: EngineStatistics, adaptersLoaded: Int) -> String {
        func gauge(_ name: String, _ help: String, _ value: Int) {
            registry.makeGauge(descriptor: .init(namespace: "graft", metricName: name, unitName: "", helpText: help))
                .set(Double(value))
        }
        gauge("engine_running", "Sequences in the running batch", engine.running)
        gauge("engine_waiting", "Sequences waiting to join the batch", engine.waiting)
        gauge("kv_blocks_in_use", "KV cache blocks held by sequences", engine.kvBlocksInUse)
        gauge("kv_blocks_total", "KV cache blocks", engine.kvBlocksTotal)
        gauge("adapters_loaded", "Adapters held in the adapter cache", adaptersLoaded)
        return registry.emitToString()
    }
}
