import Adapters
import Kernels
import ModelFormats

/// A llama-architecture transformer over quantized weights read in place.
/// `forward` runs one batch of rows from any number of sequences (prefill chunks and
/// decode steps alike) and leaves the requested rows' logits in `state.logits`.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let file: GGUFFile
    let rope: RopeTable
    /// How decode rows (and logits rows) hold activations in the quantized weight
    /// products; prompt chunks always take the exact f32 gemm path.
    public let decodeActivations: MatMul.ActivationPrecision

    /// `layout`: how the Q4_1 and Q8_0 weights are held for decode; nil picks
    /// `WeightLayout.defaultLayout(for: decodeActivations)`.
    public init(gguf: GGUFFile, decodeActivations: MatMul.ActivationPrecision = .f32,
                layout: WeightLayout? = nil) throws {
        self.decodeActivations = decodeActivations
        config = try LlamaConfig(gguf: gguf)
        weights = try LlamaWeights(gguf: gguf, config: config,
                                   layout: layout ?? .defaultLayout(for: decodeActivations))
        file = gguf
        rope = RopeTable(ropeDim: config.ropeDim, maxPositions: config.contextLength, base: config.ropeBase)
    }

    /// The dimensions an adapter must match to apply to this model.
    public var adapterShape: BaseModelShape {
        let c = config
        return BaseModelShape(nLayers: c.nLayers, dim: c.dim, hiddenDim: c.hiddenDim,
                              nHeads: c.nHeads, nKVHeads: c.nKVHeads, headDim: c.headDim)
    }

    public convenience init(path: String, decodeActivations: MatMul.ActivationPrecision = .f32) throws {
        try self.init(gguf: try GGUFFile(path: path), decodeActivations: decodeActivations)
    }

    public func forward(batch: ForwardBatch, cache: KVCache, state s: RunState) {
        let c = config
        let T = batch.rowCount
        precondition(T <= s.maxRows, "batch of \(T) rows exceeds the run state's \(s.maxRows)")
        for i in 0..<batch.sequenceCount {
            let span = batch.spans[i]
            precondition(span.startPosition + span.rowCount <= min(s.maxContext, c.contextLength),
                         "sequence runs past the context limit")
        }

        // x[t] = embedding row of tokens[t]
        for t in 0..<T {
            let token = Int(batch.tokens[t])
            precondition(token >= 0 && token < c.vocabSize, "token id \(token) outside the vocabulary")
            MatMul.dequantizeRows(weights.tokenEmbedding, rows: token..<(token + 1), out: s.x + t * c.dim)
        }

        for l in 0..<c.nLayers {
            let w = weights.layers[l]
            let kv = cache.layer(l)

            // Attention block: x += Wo · attention(rope(Wq·n), rope(Wk·n), Wv·n), n = rmsnorm(x)
            rmsNormRows(out: s.xb, inp: s.x, weight: w.attnNorm, T: T)
            project(out: s.q, s.xb, T, w.q, s, batch, l, .q)
            project(out: s.k, s.xb, T, w.k, s, batch, l, .k)
            project(out: s.v, s.xb, T, w.v, s, batch, l, .v)
            ropeForward(x: s.q, positions: batch.positions, table: rope, T: T, nHeads: c.nHeads, headDim: c.headDim)
            ropeForward(x: s.k, positions: batch.positions, table: rope, T: T, nHeads: c.nKVHeads, headDim: c.headDim)
            for i in 0..<batch.sequenceCount {
                let span = batch.spans[i]
                kvCacheWrite(layer: kv, k: s.k + span.firstRow * c.kvDim, v: s.v + span.firstRow * c.kvDim,
                             positions: batch.positions + span.firstRow, blockTable: span.blockTable, T: span.rowCount)
            }
            attention(batch: batch, layer: kv, s)
            project(out: s.xb2, s.att, T, w.o, s, batch, l, .o)
            addInPlace(s.x, s.xb2, T * c.dim)

            // MLP block: x += Wdown · (silu(Wgate·n) * Wup·n), n = rmsnorm(x)
            rmsNormRows(out: s.xb, inp: s.x, weight: w.ffnNorm, T: T)
            project(out: s.hb, s.xb, T, w.gate, s, batch, l, .gate)
            project(out: s.hb2, s.xb, T, w.up, s, batch, l, .up)
            Parallel.forEachChunk(T, minChunk: 4) { rows in
                let offset = rows.lowerBound * c.hiddenDim
                swigluForward(out: s.hb + offset, gate: s.hb + offset, up: s.hb2 + offset, n: rows.count * c.hiddenDim)
            }
            project(out: s.xb2, s.hb, T, w.down, s, batch, l, .down)
            addInPlace(s.x, s.xb2, T * c.dim)
        }

        // Final norm for the rows that want logits, gathered contiguously, then the
        // output projection.
        let L = batch.logitCount
        guard L > 0 else { return }
        precondition(L <= s.maxLogitRows, "batch asks for \(L) logits rows, run state holds \(s.maxLogitRows)")
        for i in 0..<L {
            let row = Int(batch.logitRows[i])
            rmsNormForward(out: s.xb + i * c.dim, inp: s.x + row * c.dim, weight: weights.outputNorm,
                           T: 1, dim: c.dim, eps: c.normEps)
        }
        // Logits rows are one per sequence in serving (rowwise: batch invariant); only
        // whole-prompt scoring asks for more.
        MatMul.forward(out: s.logits, outStride: weights.output.rows, x: s.xb, xStride: c.dim, T: L,
                       weight: weights.output, scratch: s.matmulScratch, path: L <= 64 ? .rowwise(decodeActivations) : .gemm)
    }

    private func rmsNormRows(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, T: Int) {
        let dim = config.dim, eps = config.normEps
        Parallel.forEachChunk(T, minChunk: 16) { rows in
            rmsNormForward(out: out + rows.lowerBound * dim, inp: inp + rows.lowerBound * dim,
                           weight: weight, T: rows.count, dim: dim, eps: eps)
        }
    }

    // out = inp · Wᵀ, plus each adapter's low-rank side path on its own rows.
    //
    // A single-row span (a decoding sequence) always takes the rowwise path and a
    // multi-row span (a prompt chunk) the gemm path, and neither path's result for a
    // row depends on the other rows it runs with. So a row's arithmetic depends on its
    // own sequence only, never on the rest of the batch or on where the engine cut the
    // prompt into chunks: a greedy request gives the same tokens alone or beside 31
    // others. The engine orders spans by (kind, adapter), so each kind is one run;
    // decode rows add their side paths in one parallel job whatever their adapters (the
    // base product prefetches their weights as it goes), and each adapter's prompt rows
    // share one pair of products.
    private func project(out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ T: Int,
                         _ w: WeightMatrix, _ s: RunState, _ batch: ForwardBatch, _ layer: Int, _ target: LoRATarget) {
        var i = 0
        while i < batch.sequenceCount {
            let path = path(of: batch.spans[i])
            let first = batch.spans[i].firstRow
            var end = i
            while end < batch.sequenceCount, self.path(of: batch.spans[end]) == path { end += 1 }
            let rows = batch.spans[end - 1].firstRow + batch.spans[end - 1].rowCount - first
            // Decode rows' adapters are gathered first, so the base product can prefetch them.
            let count = path == .gemm ? 0 : gatherDecodeAdapters(s, batch, spans: i..<end, layer, target)
            MatMul.forward(out: out + first * w.rows, outStride: w.rows, x: inp + first * w.cols, xStride: w.cols,
                           T: rows, weight: w, scratch: s.matmulScratch, path: path,
                           prefetch: UnsafeBufferPointer(start: s.loraSpans, count: count))
            if path == .gemm {
                applyPromptAdapters(out: out, inp, w, s, batch, spans: i..<end, layer, target)
            } else {
                loraRowsForward(out: out, outStride: w.rows, x: inp, xStride: w.cols, rows: s.loraRows, count: count,
                                inDim: w.cols, outDim: w.rows, shrink: s.loraShrink, shrinkStride: s.maxAdapterRank)
            }
            i = end
        }
    }

    private func path(of span: SequenceSpan) -> MatMul.Path {
        span.rowCount == 1 ? .rowwise(decodeActivations) : .gemm
    }

    /// Fills s.loraRows (and s.loraSpans, where their weights lie) with every decode row
    /// that has an adapter on this projection, whatever its adapter; returns the count.
    private func gatherDecodeAdapters(_ s: RunState, _ batch: ForwardBatch, spans: Range<Int>,
                                      _ layer: Int, _ target: LoRATarget) -> Int {
        var count = 0
        for i in spans {
            let span = batch.spans[i]
            guard let adapter = span.adapter else { continue }
            adapter._withUnsafeGuaranteedRef { adapter in
                guard let lora = adapter.weights(layer: layer, target: target) else { return }
                precondition(lora.rank <= s.maxAdapterRank, "adapter rank \(lora.rank) above the run state's \(s.maxAdapterRank)")
                s.loraRows[count] = lora.row(span.firstRow)
                s.loraSpans[count] = lora.packedSpan
                count += 1
            }
        }
        return count
    }

    /// Prompt chunks: the rows of each adapter (adjacent: the engine orders spans by
    /// adapter) share one pair of products.
    private func applyPromptAdapters(out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ w: WeightMatrix,
                                     _ s: RunState, _ batch: ForwardBatch, spans: Range<Int>, _ layer: Int,
                                     _ target: LoRATarget) {
        var i = spans.lowerBound
        while i < spans.upperBound {
            guard let adapter = batch.spans[i].adapter else { i += 1; continue }
            let first = batch.spans[i].firstRow
            var rows = 0
            while i < spans.upperBound, batch.spans[i].adapter?.toOpaque() == adapter.toOpaque() {
                rows += batch.spans[i].rowCount
                i += 1
            }
            adapter._withUnsafeGuaranteedRef { adapter in
                guard let lora = adapter.weights(layer: layer, target: target) else { return }
                precondition(lora.rank <= s.maxAdapterRank, "adapter rank \(lora.rank) above the run state's \(s.maxAdapterRank)")
                loraGemmForward(out: out + first * w.rows, outStride: w.rows, x: inp + first * w.cols, xStride: w.cols,
                                T: rows, a: lora.a, bT: lora.bT, precision: lora.precision, rank: lora.rank,
                                inDim: lora.inDim, outDim: lora.outDim, scale: lora.scale, rankScales: lora.rankScales,
                                scratch: s.loraWeightScratch, shrink: s.loraShrink)
            }
        }
    }

    private func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
        axpy(y, 1, x, n)
    }

    /// One layer's attention for every row of `batch`, from s.q into s.att (the keys
    /// and values already in `kv`); public for the benchmark that times it alone.
    // att[row, head] = causal attention of each query head over its sequence's cache.
    // Work items are a sequence's query heads of one KV head (up to
    // attentionHeadsTogether of them, each key and value load serving all), spread over
    // the worker threads in chunks of equal cost (AttentionPartition: sequences differ
    // in length), several per thread. With fewer than four such items per thread (a
    // lone sequence has three), that split would leave a thread idle for a large share
    // of the work, so each head is an item of its own, one chunk per thread, and a thread's run of heads is cut only where
    // the KV head changes: a lone sequence's nine heads on two threads are 3 + 1 and
    // 2 + 3 heads, each thread reading two KV heads' keys and values instead of four or
    // five. A head's arithmetic is the same however heads are grouped.
    public func attention(batch: ForwardBatch, layer kv: PagedKVLayer, _ s: RunState) {
        let c = config
        let groupSize = c.nHeads / c.nKVHeads
        let scale = 1 / Float(c.headDim).squareRoot()
        let grouped = batch.sequenceCount * c.nKVHeads >= 4 * Parallel.threadCount
        let together = grouped ? min(groupSize, attentionHeadsTogether) : 1
        let parts = (groupSize + together - 1) / together
        let items = batch.sequenceCount * c.nKVHeads * parts
        let chunks = Parallel.threadCount * (grouped ? AttentionPartition.chunksPerThread : 1)
        let partition = AttentionPartition(batch: batch, itemsPerSequence: c.nKVHeads * parts, chunks: min(chunks, items))
        Parallel.forEachJob(partition.chunks) { chunk, worker in
            let range = partition.items(ofChunk: chunk)
            let scores = s.scores + worker * attentionHeadsTogether * s.maxContext
            var item = range.lowerBound
            while item < range.upperBound {
                let span = batch.spans[item / (c.nKVHeads * parts)]
                let kvHead = item / parts % c.nKVHeads
                let firstHead = kvHead * groupSize + item % parts * together
                // One head per item: the next items of this chunk on the same KV head join.
                var count = 1
                while together == 1, count < attentionHeadsTogether, item + count < range.upperBound,
                      (item + count) / parts == item / parts { count += 1 }
                let rowOffset = span.firstRow * c.qDim + firstHead * c.headDim
                attentionForward(out: s.att + rowOffset, outStride: c.qDim,
                                 q: s.q + rowOffset, qStride: c.qDim,
                                 heads: together == 1 ? count : min(together, (kvHead + 1) * groupSize - firstHead),
                                 layer: kv, kvHead: kvHead, blockTable: span.blockTable,
                                 startPos: span.startPosition, nq: span.rowCount, scale: scale,
                                 scores: scores, scoreStride: s.maxContext)
                item += count
            }
        }
    }
}
