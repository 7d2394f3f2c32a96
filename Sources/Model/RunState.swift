import Kernels

/// Scratch activations for forward passes of up to `maxRows` rows, carved out of one
/// 64-byte-aligned allocation (llm.c's "malloc all at once"), so passes allocate nothing.
public final class RunState: @unchecked Sendable {
    public let maxRows: Int
    public let maxLogitRows: Int
    public let maxContext: Int
    /// Residual stream, (maxRows, dim).
    let x: UnsafeMutablePointer<Float>
    /// Normed input of a sub-block, (maxRows, dim); also the gathered final rows.
    let xb: UnsafeMutablePointer<Float>
    /// Output of a projection back to dim, (maxRows, dim).
    let xb2: UnsafeMutablePointer<Float>
    public let q: UnsafeMutablePointer<Float>     // (maxRows, qDim)
    let k: UnsafeMutablePointer<Float>     // (maxRows, kvDim)
    let v: UnsafeMutablePointer<Float>     // (maxRows, kvDim)
    let att: UnsafeMutablePointer<Float>   // (maxRows, qDim)
    let hb: UnsafeMutablePointer<Float>    // (maxRows, hiddenDim)
    let hb2: UnsafeMutablePointer<Float>   // (maxRows, hiddenDim)
    /// Logits of the requested rows, (maxLogitRows, vocabSize).
    public let logits: UnsafeMutablePointer<Float>
    /// MatMul.forward's weight tiles and packed activations.
    let matmulScratch: UnsafeMutablePointer<Float>
    /// LoRA x·Aᵀ rows, (maxRows, maxAdapterRank).
    let loraShrink: UnsafeMutablePointer<Float>
    /// One projection's A and Bᵀ widened to f32, and packed prompt rows, for loraGemmForward.
    let loraWeightScratch: UnsafeMutablePointer<Float>
    /// The decode rows' LoRA side paths of one projection, (maxRows).
    let loraRows: UnsafeMutablePointer<LoRARow>
    /// Where those rows' weights lie, for the base projection to prefetch, (maxRows).
    let loraSpans: UnsafeMutablePointer<PrefetchSpan>
    public let maxAdapterRank: Int
    /// Attention scores, attentionHeadsTogether maxContext rows per worker thread.
    let scores: UnsafeMutablePointer<Float>
    let scoreWorkers: Int
    private let arena: UnsafeMutableRawPointer

    public init(config c: LlamaConfig, maxRows: Int, maxLogitRows: Int, maxContext: Int, maxAdapterRank: Int = 64) {
        self.maxAdapterRank = maxAdapterRank
        self.maxRows = maxRows
        self.maxLogitRows = maxLogitRows
        self.maxContext = maxContext
        scoreWorkers = Parallel.threadCount
        let widest = max(c.dim, c.qDim, c.hiddenDim)
        let counts = [
            maxRows * c.dim, maxRows * c.dim, maxRows * c.dim,
            maxRows * c.qDim, maxRows * c.kvDim, maxRows * c.kvDim, maxRows * c.qDim,
            maxRows * c.hiddenDim, maxRows * c.hiddenDim,
            maxLogitRows * c.vocabSize,
            MatMul.scratchCount(rows: max(maxRows, maxLogitRows), cols: widest),
            scoreWorkers * attentionHeadsTogether * maxContext,
            maxRows * maxAdapterRank,
            loraGemmScratchCount(rows: maxRows, rank: maxAdapterRank, inDim: widest, outDim: widest),
        ]
        // Round each view up to 16 floats so every view stays 64-byte aligned.
        let padded = counts.map { ($0 + 15) / 16 * 16 }
        arena = .allocate(byteCount: padded.reduce(0, +) * 4, alignment: 64)
        var cursor = arena.bindMemory(to: Float.self, capacity: padded.reduce(0, +))
        var views: [UnsafeMutablePointer<Float>] = []
        for n in padded {
            views.append(cursor)
            cursor += n
        }
        (x, xb, xb2, q, k, v, att, hb, hb2) =
            (views[0], views[1], views[2], views[3], views[4], views[5], views[6], views[7], views[8])
        logits = views[9]
        matmulScratch = views[10]
        scores = views[11]
        loraShrink = views[12]
        loraWeightScratch = views[13]
        loraRows = .allocate(capacity: maxRows)
        loraSpans = .allocate(capacity: maxRows)
    }

    deinit {
        arena.deallocate()
        loraRows.deallocate()
        loraSpans.deallocate()
    }
}
