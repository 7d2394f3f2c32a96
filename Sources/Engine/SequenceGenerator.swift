import Model

/// Why a generation ended, in OpenAI's words.
public enum FinishReason: String, Sendable {
    /// An end-of-generation token (or, at the HTTP layer, a stop string).
    case stop
    /// max_tokens or the context limit.
    case length
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case contextOverflow(promptTokens: Int, maxTokens: Int, contextLength: Int)

    public var description: String {
        switch self {
        case .emptyPrompt:
            return "the prompt is empty"
        case .contextOverflow(let prompt, let maxTokens, let context):
            return "prompt of \(prompt) tokens plus max_tokens \(maxTokens) exceeds the context length \(context)"
        }
    }
}

public struct GenerationOutcome: Sendable {
    public var tokens: [Int]
    public var finishReason: FinishReason
    public var promptTokens: Int
}

/// Runs one sequence at a time through the model: chunked prefill, then one decode
/// step per token. The command line uses it; the server uses the batched engine.
public final class SequenceGenerator {
    public let model: LlamaModel
    public let contextLength: Int
    public let prefillChunk: Int
    private let cache: KVCache
    private let state: RunState
    private let batch: ForwardBatch
    private let blocks: BlockTable

    public init(model: LlamaModel, contextLength: Int? = nil, prefillChunk: Int = 256) {
        self.model = model
        let context = min(contextLength ?? model.config.contextLength, model.config.contextLength)
        self.contextLength = context
        self.prefillChunk = prefillChunk
        let blockSize = 16
        let nBlocks = (context + blockSize - 1) / blockSize
        cache = KVCache(config: model.config, nBlocks: nBlocks, blockSize: blockSize)
        state = RunState(config: model.config, maxRows: prefillChunk, maxLogitRows: 1, maxContext: context)
        batch = ForwardBatch(maxRows: prefillChunk, maxSequences: 1)
        blocks = BlockTable(capacity: nBlocks)
    }

    /// Generates up to `maxTokens` tokens after `prompt`. `onToken` sees each token as
    /// it is sampled (end-of-generation tokens excluded) and returns false to stop.
    public func generate(prompt: [Int], maxTokens: Int, sampler: Sampler, stopTokens: Set<Int>,
                         onToken: (Int) -> Bool = { _ in true }) throws -> GenerationOutcome {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard prompt.count + maxTokens <= contextLength else {
            throw GenerationError.contextOverflow(promptTokens: prompt.count, maxTokens: maxTokens, contextLength: contextLength)
        }
        defer { blocks.release(to: cache) }
        _ = blocks.reserve(positions: prompt.count + maxTokens, in: cache)

        var logits = prefill(prompt)
        var output: [Int] = []
        var finish = FinishReason.length
        while output.count < maxTokens {
            let token = sampler.sample(logits: logits)
            if stopTokens.contains(token) {
                finish = .stop
                break
            }
            output.append(token)
            if !onToken(token) {
                finish = .stop
                break
            }
            if output.count == maxTokens { break }
            logits = step([Int32(token)], startPosition: prompt.count + output.count - 1)
        }
        return GenerationOutcome(tokens: output, finishReason: finish, promptTokens: prompt.count)
    }

    /// Runs the prompt in chunks and returns the logits of its last position.
    private func prefill(_ prompt: [Int]) -> UnsafeMutablePointer<Float> {
        var start = 0
        var logits = state.logits
        while start < prompt.count {
            let end = min(start + prefillChunk, prompt.count)
            logits = step(prompt[start..<end].lazy.map { Int32($0) }, startPosition: start)
            start = end
        }
        return logits
    }

    private func step<S: Sequence<Int32>>(_ tokens: S, startPosition: Int) -> UnsafeMutablePointer<Float> {
        batch.reset()
        batch.add(tokens: tokens, startPosition: startPosition, blockTable: blocks.entries, logits: .last)
        model.forward(batch: batch, cache: cache, state: state)
        return state.logits
    }
}
