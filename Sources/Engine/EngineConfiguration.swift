import Kernels
import Model

/// Limits of the batched engine.
public struct EngineConfiguration: Sendable {
    /// Sequences decoding at once.
    public var maxRunningSequences: Int
    /// Rows (prompt chunk tokens plus one per decoding sequence) in one forward pass.
    public var maxTokensPerStep: Int
    /// Longest prompt plus completion.
    public var maxContext: Int
    /// KV cache size in blocks of `blockSize` positions.
    public var kvBlocks: Int
    public var blockSize: Int
    /// Requests waiting beyond this many are refused with `queueFull`.
    public var maxWaiting: Int
    /// Largest LoRA rank accepted.
    public var maxAdapterRank: Int
    /// How the KV cache stores keys and values.
    public var kvPrecision: KVPrecision

    public init(maxRunningSequences: Int = 32, maxTokensPerStep: Int = 512, maxContext: Int = 2048,
                kvBlocks: Int? = nil, blockSize: Int = KVCache.defaultBlockSize, maxWaiting: Int = 256, maxAdapterRank: Int = 64,
                kvPrecision: KVPrecision = .f32) {
        self.maxRunningSequences = maxRunningSequences
        self.maxTokensPerStep = maxTokensPerStep
        self.maxContext = maxContext
        self.blockSize = blockSize
        // Default: room for every running sequence at half the context on average.
        self.kvBlocks = kvBlocks ?? max(maxContext / blockSize + 1, maxRunningSequences * maxContext / blockSize / 2)
        self.maxWaiting = maxWaiting
        self.maxAdapterRank = maxAdapterRank
        self.kvPrecision = kvPrecision
    }
}
