import Adapters
import Model
import Tokenization

/// One request inside the engine: its tokens, how many of them are in the KV cache,
/// its blocks, sampler and text state. Touched only by the engine thread.
final class SequenceState {
    let id: Int
    let request: GenerationRequest
    let continuation: AsyncStream<GenerationEvent>.Continuation
    /// Prompt followed by generated tokens.
    var tokens: [Int]
    let promptCount: Int
    /// Tokens whose keys and values are in the cache (recomputation after a
    /// preemption starts again from 0).
    var computed = 0
    let blocks: BlockTable
    let sampler: Sampler
    var detokenizer: StreamingDetokenizer
    var stopMatcher: StopSequenceMatcher
    /// Generated-token counts, for the presence and frequency penalties.
    var counts: [Int: Int] = [:]
    /// Order of admission; the latest admitted is preempted first.
    var admittedAt = 0

    init(id: Int, request: GenerationRequest, continuation: AsyncStream<GenerationEvent>.Continuation,
         tokenizer: Tokenizer, vocabSize: Int, blockCapacity: Int) {
        self.id = id
        self.request = request
        self.continuation = continuation
        tokens = request.promptTokens
        tokens.reserveCapacity(request.promptTokens.count + request.maxTokens)
        promptCount = request.promptTokens.count
        blocks = BlockTable(capacity: blockCapacity)
        sampler = Sampler(parameters: request.sampling, vocabSize: vocabSize)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        stopMatcher = StopSequenceMatcher(stops: request.stopSequences)
    }

    var generatedCount: Int { tokens.count - promptCount }
    var pendingTokens: Int { tokens.count - computed }
    var usage: Usage { Usage(promptTokens: promptCount, completionTokens: generatedCount) }
}
