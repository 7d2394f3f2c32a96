// A LoRA adapter in the layout the kernels use: for each (layer, projection) it touches,
// A (rank, inDim) and Bᵀ (rank, outDim) as f32, row-major, B's rows already in GGUF
// order. B is kept transposed so the decode kernel expands along contiguous outputs.
// All matrices live in one allocation (llm.c's malloc_and_point_parameters); the
// LoRAWeights views point into it. Immutable after init, hence safe to share.

/// Views of one projection's A and B; valid while the adapter that returned them is alive.
public struct LoRAWeights: @unchecked Sendable {
    /// B as (outDim, rank) row-major, GGUF row order: the layout PEFT files hold.
    public func bRowMajor() -> [Float] {
        (0..<(outDim * rank)).map { i in bT[(i % rank) * outDim + i / rank] }
    }

    /// (rank, inDim) row-major.
    public let a: UnsafePointer<Float>
    /// Bᵀ: (rank, outDim) row-major; B's rows (Bᵀ's columns) in GGUF order.
    public let bT: UnsafePointer<Float>
    public let rank: Int
    public let inDim: Int
    public let outDim: Int
}

public final class LoRAAdapter: @unchecked Sendable {
    public let rank: Int
    public let alpha: Float
    public let useRSLoRA: Bool
    /// alpha / rank, or alpha / sqrt(rank) with rank-stabilized LoRA (PEFT's use_rslora).
    public let scale: Float
    /// The projections that have weights in at least one layer.
    public let targets: Set<LoRATarget>
    public let shape: BaseModelShape
    /// Bytes of the one allocation holding every A and B.
    public let byteCount: Int

    private let arena: UnsafeMutableRawPointer
    /// nLayers × 7 entries, indexed by layer * 7 + target.index.
    private let table: [LoRAWeights?]

    /// `b` is in Hugging Face row order (as PEFT stores it); Q and K rows are permuted here.
    public init(shape: BaseModelShape, rank: Int, alpha: Float, useRSLoRA: Bool,
                tensors: [(layer: Int, target: LoRATarget, a: [Float], b: [Float])]) throws(AdapterError) {
        try shape.validate()
        guard rank > 0 else { throw .invalidRank(rank) }
        guard !tensors.isEmpty else { throw .noWeights }
        var seen = Set<Int>()
        for t in tensors {
            guard t.layer >= 0 && t.layer < shape.nLayers else {
                throw .layerOutOfRange(name: "tensors for \(t.target.rawValue)", layer: t.layer, nLayers: shape.nLayers)
            }
            guard seen.insert(t.layer * 7 + t.target.index).inserted else {
                throw .duplicateWeights("layer \(t.layer) \(t.target.rawValue)")
            }
            let (inDim, outDim) = (shape.inputDim(t.target), shape.outputDim(t.target))
            guard t.a.count == rank * inDim else {
                throw .elementCountMismatch(layer: t.layer, target: t.target, matrix: "A", expected: rank * inDim, found: t.a.count)
            }
            guard t.b.count == outDim * rank else {
                throw .elementCountMismatch(layer: t.layer, target: t.target, matrix: "B", expected: outDim * rank, found: t.b.count)
            }
        }

        // Each matrix starts on a 64-byte boundary so SIMD loads of a row start aligned.
        let floatsPerLine = 64 / MemoryLayout<Float>.stride
        func padded(_ count: Int) -> Int { (count + floatsPerLine - 1) / floatsPerLine * floatsPerLine }
        let totalFloats = tensors.reduce(0) { sum, t in sum + padded(t.a.count) + padded(t.b.count) }
        byteCount = totalFloats * MemoryLayout<Float>.stride
        arena = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
        let floats = arena.initializeMemory(as: Float.self, repeating: 0, count: totalFloats)

        var table = [LoRAWeights?](repeating: nil, count: shape.nLayers * 7)
        var next = floats
        for t in tensors {
            let (inDim, outDim) = (shape.inputDim(t.target), shape.outputDim(t.target))
            let a = next
            a.update(from: t.a, count: t.a.count)
            var b = t.b
            if t.target.hasRotaryRowOrder {
                t.b.withUnsafeBufferPointer { hf in
                    b.withUnsafeMutableBufferPointer { gguf in
                        permuteRowsHFToGGUF(dst: gguf.baseAddress!, src: hf.baseAddress!, rows: outDim, cols: rank, headDim: shape.headDim)
                    }
                }
            }
            let bT = a + padded(t.a.count)
            for o in 0..<outDim {
                for r in 0..<rank { bT[r * outDim + o] = b[o * rank + r] }
            }
            next = bT + padded(t.b.count)
            table[t.layer * 7 + t.target.index] = LoRAWeights(a: a, bT: bT, rank: rank, inDim: inDim, outDim: outDim)
        }

        self.table = table
        self.shape = shape
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        scale = useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        targets = Set(tensors.map(\.target))
    }

    deinit {
        arena.deallocate()
    }

    /// nil when the adapter leaves this projection of this layer alone. A table lookup:
    /// called per layer, per projection, per step.
    public func weights(layer: Int, target: LoRATarget) -> LoRAWeights? {
        precondition(layer >= 0 && layer < shape.nLayers, "layer \(layer) out of range 0..<\(shape.nLayers)")
        return table[layer &* 7 &+ target.index]
    }
}
