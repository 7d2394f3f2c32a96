import Adapters
import Foundation
import Kernels
import Model
import Tokenization

/// Continuous batching over one model: a thread of its own owns the model, the KV
/// cache and every running sequence. Each step runs one forward pass over one new
/// token of every decoding sequence plus chunks of waiting prompts; sequences leave
/// the batch the step they finish and waiting ones join the next.
public final class BatchEngine: InferenceEngine, @unchecked Sendable {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let configuration: EngineConfiguration
    let cache: KVCache
    let state: RunState
    let batch: ForwardBatch
    let stopTokens: Set<Int>

    // Shared with submitting threads, under `lock`.
    private let lock = NSCondition()
    private var submitted: [SequenceState] = []
    private var cancelled: Set<Int> = []
    private var nextId = 0
    private var stopping = false
    private var published = EngineStatistics(running: 0, waiting: 0, kvBlocksInUse: 0, kvBlocksTotal: 0,
                                             stepsRun: 0, preemptions: 0)

    // Engine thread only.
    var waiting: [SequenceState] = []
    var running: [SequenceState] = []
    var stepsRun = 0
    var preemptions = 0
    var admissions = 0
    /// The current step's rows per sequence and logits row per entry (-1: none); kept
    /// between steps so a step allocates nothing.
    var scheduled: [(sequence: SequenceState, rows: Int)] = []
    var logitIndex: [Int] = []
    private var thread: Thread?

    public init(model: LlamaModel, tokenizer: Tokenizer, configuration: EngineConfiguration = .init()) {
        self.model = model
        self.tokenizer = tokenizer
        var config = configuration
        config.maxContext = min(config.maxContext, model.config.contextLength)
        self.configuration = config
        cache = KVCache(config: model.config, nBlocks: config.kvBlocks, blockSize: config.blockSize,
                        precision: config.kvPrecision)
        state = RunState(config: model.config, maxRows: config.maxTokensPerStep,
                         maxLogitRows: config.maxRunningSequences, maxContext: config.maxContext,
                         maxAdapterRank: config.maxAdapterRank)
        batch = ForwardBatch(maxRows: config.maxTokensPerStep, maxSequences: config.maxRunningSequences)
        stopTokens = tokenizer.endOfGenerationTokenIds
        published.kvBlocksTotal = config.kvBlocks
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "graft-engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    public func generate(_ request: GenerationRequest) throws(EngineError) -> AsyncStream<GenerationEvent> {
        try validate(request)
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { throw .shuttingDown }
        guard submitted.count + published.waiting < configuration.maxWaiting else { throw .queueFull }
        let id = nextId
        nextId += 1
        let sequence = SequenceState(id: id, request: request, continuation: continuation, tokenizer: tokenizer,
                                     vocabSize: model.config.vocabSize,
                                     blockCapacity: cache.blocksNeeded(positions: configuration.maxContext))
        continuation.onTermination = { [weak self] reason in
            if case .cancelled = reason { self?.cancel(id) }
        }
        submitted.append(sequence)
        lock.signal()
        return stream
    }

    public var statistics: EngineStatistics {
        lock.lock()
        defer { lock.unlock() }
        return published
    }

    /// Stops taking requests, finishes every running and waiting one, then ends the
    /// engine thread.
    public func shutdown() {
        lock.lock()
        stopping = true
        lock.signal()
        lock.unlock()
    }

    private func validate(_ r: GenerationRequest) throws(EngineError) {
        if r.promptTokens.isEmpty { throw .invalidRequest("the prompt is empty") }
        if r.maxTokens < 1 { throw .invalidRequest("max_tokens must be at least 1") }
        if let message = r.sampling.validationError { throw .invalidRequest(message) }
        if let top = r.topLogprobs, !(0...20).contains(top) { throw .invalidRequest("top_logprobs must be between 0 and 20") }
        if let bad = r.promptTokens.first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
            throw .invalidRequest("token id \(bad) is outside the vocabulary")
        }
        let limit = min(configuration.maxContext, cache.nBlocks * cache.blockSize)
        if r.promptTokens.count + r.maxTokens > limit {
            throw .contextOverflow(promptTokens: r.promptTokens.count, maxTokens: r.maxTokens, limit: limit)
        }
        if let adapter = r.adapter {
            if adapter.shape != model.adapterShape {
                throw .invalidRequest("the adapter was made for a different base model")
            }
            if adapter.maxRank > configuration.maxAdapterRank {
                throw .invalidRequest("adapter rank \(adapter.maxRank) exceeds the engine's maximum of \(configuration.maxAdapterRank)")
            }
        }
    }

    private func cancel(_ id: Int) {
        lock.lock()
        cancelled.insert(id)
        lock.signal()
        lock.unlock()
    }

    private func loop() {
        while true {
            lock.lock()
            while submitted.isEmpty && cancelled.isEmpty && waiting.isEmpty && running.isEmpty && !stopping {
                lock.wait()
            }
            waiting += submitted
            submitted.removeAll(keepingCapacity: true)
            let cancelledNow = cancelled
            cancelled.removeAll(keepingCapacity: true)
            let done = stopping && waiting.isEmpty && running.isEmpty
            lock.unlock()
            if done { return }
            if !cancelledNow.isEmpty { dropCancelled(cancelledNow) }
            if !waiting.isEmpty || !running.isEmpty { step() }
            publishStatistics()
        }
    }

    private func dropCancelled(_ ids: Set<Int>) {
        for sequence in running where ids.contains(sequence.id) { finish(sequence, .stop) }
        running.removeAll { ids.contains($0.id) }
        for sequence in waiting where ids.contains(sequence.id) {
            sequence.continuation.finish()
        }
        waiting.removeAll { ids.contains($0.id) }
    }

    private func publishStatistics() {
        lock.lock()
        published.running = running.count
        published.waiting = waiting.count
        published.kvBlocksInUse = cache.nBlocks - cache.freeCount
        published.stepsRun = stepsRun
        published.preemptions = preemptions
        lock.unlock()
    }

    /// Ends a sequence: returns its blocks, releases any held-back text (unless a stop
    /// string ended it) and closes its stream.
    func finish(_ sequence: SequenceState, _ reason: FinishReason, stopString: Bool = false) {
        sequence.blocks.release(to: cache)
        if !stopString {
            let held = sequence.stopMatcher.flush() + sequence.detokenizer.flush()
            if !held.isEmpty { sequence.continuation.yield(.text(held)) }
        }
        sequence.continuation.yield(.finished(reason: reason, usage: sequence.usage))
        sequence.continuation.finish()
    }
}
