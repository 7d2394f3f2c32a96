import Engine
import ServiceLifecycle

/// On graceful shutdown: refuse new requests (503), wait for the engine's running and
/// waiting generations to finish, then stop the engine. Listed after the application in
/// the service group so it is told first, while the HTTP server still answers.
public struct DrainService: Service {
    let gate: ShutdownGate
    let engine: any InferenceEngine
    let stopEngine: @Sendable () -> Void

    public init(gate: ShutdownGate, engine: any InferenceEngine, stopEngine: @escaping @Sendable () -> Void) {
        self.gate = gate
        self.engine = engine
        self.stopEngine = stopEngine
    }

    public func run() async throws {
        // Cancellation (not a graceful stop) also ends the wait; the engine stops either way.
        try? await gracefulShutdown()
        gate.close()
        while !Task.isCancelled {
            let statistics = engine.statistics
            if statistics.running == 0 && statistics.waiting == 0 { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        stopEngine()
    }
}
