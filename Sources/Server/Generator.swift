import Engine
import Foundation

/// Submits a request's generations to the engine and reads their events back, recording
/// latency metrics. Handlers hold no model state: everything heavy runs on the engine
/// thread, and this only moves events.
struct Generator: Sendable {
    let engine: any InferenceEngine
    let metrics: ServerMetrics

    /// Submits `n` copies of `request`, all or none: when one is refused, the streams
    /// already submitted are dropped here, which cancels them.
    func submit(_ request: GenerationRequest, n: Int, promptParam: String) throws(OpenAIError) -> [AsyncStream<GenerationEvent>] {
        var streams: [AsyncStream<GenerationEvent>] = []
        for _ in 0..<n {
            do {
                streams.append(try engine.generate(request))
            } catch {
                throw Self.openAIError(error, promptParam: promptParam)
            }
        }
        return streams
    }

    /// Calls `body` with each choice's events in arrival order. When `body` throws (the
    /// client went away mid-stream), every generation still running is cancelled
    /// before the error propagates.
    func forEachEvent(of streams: [AsyncStream<GenerationEvent>], model: String,
                      _ body: (_ index: Int, _ event: GenerationEvent) async throws -> Void) async throws {
        let (merged, continuation) = AsyncStream.makeStream(of: (Int, GenerationEvent).self)
        // Cancelling this task ends each `for await` below, and an AsyncStream whose
        // consumer is cancelled tells the engine to drop the sequence.
        let forwarding = Task {
            await withTaskGroup(of: Void.self) { group in
                for (index, stream) in streams.enumerated() {
                    group.addTask {
                        for await event in stream { continuation.yield((index, event)) }
                    }
                }
            }
            continuation.finish()
        }
        defer { forwarding.cancel() }

        let clock = ContinuousClock()
        let submitted = clock.now
        var lastToken = [ContinuousClock.Instant?](repeating: nil, count: streams.count)
        var unfinished = streams.count
        do {
            for await (index, event) in merged {
                switch event {
                case .token:
                    let now = clock.now
                    if let last = lastToken[index] { metrics.timePerOutputToken(now - last) } else { metrics.timeToFirstToken(now - submitted) }
                    lastToken[index] = now
                    metrics.tokenGenerated(model: model)
                case .finished: unfinished -= 1
                case .text: break
                }
                try await body(index, event)
            }
        } catch {
            if unfinished > 0 { metrics.generationCancelled() }
            throw error
        }
    }

    static func openAIError(_ error: EngineError, promptParam: String) -> OpenAIError {
        switch error {
        case .invalidRequest(let message):
            return .invalidRequest(message)
        case .contextOverflow:
            return .invalidRequest("This model's maximum context length was exceeded: \(error)", param: promptParam,
                                   code: "context_length_exceeded")
        case .queueFull:
            return .queueFull
        case .shuttingDown:
            return .shuttingDown
        }
    }
}
