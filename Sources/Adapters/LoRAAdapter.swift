import Kernels

// A LoRA adapter in the layout the kernels use: for each (layer, projection) it touches,
// A (rank, inDim) and Bᵀ (rank, outDim) as IEEE halves in the kernels' packed layout
// (LoRAPacking: each matrix one forward stream for the decode kernel), B's rows already
// in GGUF order.
// Halves take half the memory of f32 (32 rank-16 adapters on all seven projections of
// SmolLM2-135M: 313 MB instead of 625 MB), and the decode side path, which streams
// every adapter's weights once per step, reads half the bytes; the kernels widen to f32.
// Each matrix is multiplied by a power of two before rounding, chosen so its largest
// magnitude sits near the top of the half range: small trained weights keep 11
// significant bits instead of falling into subnormals, and large ones cannot overflow.
// The factor is undone exactly in the scale (`LoRAWeights.scale`). Halves rather than
// bfloat16: PEFT's reference logits (AdapterReferenceTests) differ by at most 5.1e-3
// with halves and 3.0e-2 with bfloat16 (4.4e-5 with f32), against a 1e-2 tolerance.
// All matrices live in one allocation (llm.c's malloc_and_point_parameters); the
// LoRAWeights views point into it. Immutable after init, hence safe to share.

/// Views of one projection's A and B; valid while the adapter that returned them is alive.
public struct LoRAWeights: @unchecked Sendable {
    /// A as (rank, inDim) row-major f32: the layout PEFT files hold.
    public func aRowMajor() -> [Float] {
        var out = [Float](repeating: 0, count: rank * inDim)
        out.withUnsafeMutableBufferPointer { LoRAPacking.unpackA($0.baseAddress!, a, rank: rank, inDim: inDim) }
        return out.map { $0 * aFactor }
    }

    /// B as (outDim, rank) row-major f32, GGUF row order: the layout PEFT files hold.
    public func bRowMajor() -> [Float] {
        var bT = [Float](repeating: 0, count: rank * outDim)
        bT.withUnsafeMutableBufferPointer { LoRAPacking.unpackBT($0.baseAddress!, self.bT, rank: rank, outDim: outDim) }
        return (0..<(outDim * rank)).map { i in bT[(i % rank) * outDim + i / rank] * bFactor }
    }

    /// A (rank, inDim) in LoRAPacking's layout; the true A is `a` · aFactor.
    public let a: UnsafePointer<Float16>
    /// Bᵀ (rank, outDim) in LoRAPacking's layout, B's rows (Bᵀ's columns) in GGUF order;
    /// the true Bᵀ is `bT` · bFactor.
    public let bT: UnsafePointer<Float16>
    public let rank: Int
    public let inDim: Int
    public let outDim: Int
    /// The projection's lora_alpha (PEFT's, or its alpha_pattern's).
    public let alpha: Float
    /// Powers of two undoing the range scaling of `a` and `bT`.
    public let aFactor: Float
    public let bFactor: Float
    /// The projection's scale (alpha / rank, or alpha / sqrt(rank) with rank-stabilized
    /// LoRA) times both factors: the one multiplier the kernels apply,
    /// out += scale · (x · aᵀ) · bTᵀᵀ.
    public let scale: Float

    /// The packed A and Bᵀ, adjacent in the adapter's allocation, as one span.
    public var packedSpan: PrefetchSpan {
        precondition(UnsafeRawPointer(bT) == UnsafeRawPointer(a + LoRAPacking.count(rank: rank, cols: inDim)),
                     "A and Bᵀ are adjacent in the adapter's allocation")
        return PrefetchSpan(start: a, byteCount: 2 * (LoRAPacking.count(rank: rank, cols: inDim)
                                                     + LoRAPacking.count(rank: rank, cols: outDim)))
    }
}

/// One (layer, projection) an adapter touches, with its own rank and alpha (PEFT's
/// rank_pattern and alpha_pattern let them differ between modules).
public struct LoRAProjection: Sendable, Equatable {
    public var layer: Int
    public var target: LoRATarget
    public var rank: Int
    public var alpha: Float

    public init(layer: Int, target: LoRATarget, rank: Int, alpha: Float) {
        (self.layer, self.target, self.rank, self.alpha) = (layer, target, rank, alpha)
    }
}

public final class LoRAAdapter: @unchecked Sendable {
    /// The largest rank of any projection: what the kernels' scratch must hold.
    public let maxRank: Int
    /// Rank-stabilized LoRA (PEFT's use_rslora): each projection's scale is alpha / sqrt(rank)
    /// instead of alpha / rank.
    public let useRSLoRA: Bool
    /// The projections that have weights in at least one layer.
    public let targets: Set<LoRATarget>
    public let shape: BaseModelShape
    /// Bytes of the one allocation holding every A and B.
    public let byteCount: Int

    private let arena: UnsafeMutableRawPointer
    /// nLayers × 7 entries, indexed by layer * 7 + target.index.
    private let table: [LoRAWeights?]

    /// One rank and alpha for every projection given. `b` is in Hugging Face row order (as
    /// PEFT stores it); Q and K rows are permuted here.
    public convenience init(shape: BaseModelShape, rank: Int, alpha: Float, useRSLoRA: Bool,
                            tensors: [(layer: Int, target: LoRATarget, a: [Float], b: [Float])]) throws(AdapterError) {
        try self.init(shape: shape, useRSLoRA: useRSLoRA, projections: tensors.map {
            LoRAProjection(layer: $0.layer, target: $0.target, rank: rank, alpha: alpha)
        }) { i in (tensors[i].a, tensors[i].b) }
    }

    /// Each projection with its own rank and alpha, the values of projection i (A as
    /// (rank, inDim), B as (outDim, rank), row-major) asked for one at a time by
    /// `values(i)`, in order, so a loader never holds more than one projection's f32
    /// weights besides the halves (peak memory while loading).
    public init(shape: BaseModelShape, useRSLoRA: Bool, projections: [LoRAProjection],
                values: (Int) throws(AdapterError) -> (a: [Float], b: [Float])) throws(AdapterError) {
        try shape.validate()
        guard !projections.isEmpty else { throw .noWeights }
        var seen = Set<Int>()
        for t in projections {
            guard t.rank > 0 else { throw .invalidRank(t.rank) }
            guard t.alpha.isFinite else { throw .invalidAlpha(layer: t.layer, target: t.target, alpha: t.alpha) }
            guard t.layer >= 0 && t.layer < shape.nLayers else {
                throw .layerOutOfRange(name: "tensors for \(t.target.rawValue)", layer: t.layer, nLayers: shape.nLayers)
            }
            guard seen.insert(t.layer * 7 + t.target.index).inserted else {
                throw .duplicateWeights("layer \(t.layer) \(t.target.rawValue)")
            }
        }

        // Each matrix starts on a 64-byte boundary so SIMD loads of a row start aligned.
        let halvesPerLine = 64 / MemoryLayout<Float16>.stride
        func padded(_ count: Int) -> Int { (count + halvesPerLine - 1) / halvesPerLine * halvesPerLine }
        func packedSizes(_ t: LoRAProjection) -> (a: Int, bT: Int) {
            (padded(LoRAPacking.count(rank: t.rank, cols: shape.inputDim(t.target))),
             padded(LoRAPacking.count(rank: t.rank, cols: shape.outputDim(t.target))))
        }
        let totalHalves = projections.reduce(0) { sum, t in sum + packedSizes(t).a + packedSizes(t).bT }
        let byteCount = totalHalves * MemoryLayout<Float16>.stride
        let arena = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
        let halves = arena.initializeMemory(as: Float16.self, repeating: 0, count: totalHalves)

        var table = [LoRAWeights?](repeating: nil, count: shape.nLayers * 7)
        var next = halves
        do throws(AdapterError) {
            for (i, t) in projections.enumerated() {
                let (rank, inDim, outDim) = (t.rank, shape.inputDim(t.target), shape.outputDim(t.target))
                let (aValues, b) = try values(i)
                guard aValues.count == rank * inDim else {
                    throw .elementCountMismatch(layer: t.layer, target: t.target, matrix: "A", expected: rank * inDim, found: aValues.count)
                }
                guard b.count == outDim * rank else {
                    throw .elementCountMismatch(layer: t.layer, target: t.target, matrix: "B", expected: outDim * rank, found: b.count)
                }
                var gguf = b
                if t.target.hasRotaryRowOrder {
                    b.withUnsafeBufferPointer { hf in
                        gguf.withUnsafeMutableBufferPointer { out in
                            permuteRowsHFToGGUF(dst: out.baseAddress!, src: hf.baseAddress!, rows: outDim, cols: rank, headDim: shape.headDim)
                        }
                    }
                }
                var bT = [Float](repeating: 0, count: b.count)
                for o in 0..<outDim {
                    for r in 0..<rank { bT[r * outDim + o] = gguf[o * rank + r] }
                }
                let (aHalves, aFactor) = roundToHalves(aValues)
                let (bTHalves, bFactor) = roundToHalves(bT)
                let a = next, packedBT = next + packedSizes(t).a
                LoRAPacking.packA(a, aHalves, rank: rank, inDim: inDim)
                LoRAPacking.packBT(packedBT, bTHalves, rank: rank, outDim: outDim)
                next = packedBT + packedSizes(t).bT
                let scale = useRSLoRA ? t.alpha / Float(rank).squareRoot() : t.alpha / Float(rank)
                table[t.layer * 7 + t.target.index] = LoRAWeights(
                    a: a, bT: packedBT, rank: rank, inDim: inDim, outDim: outDim, alpha: t.alpha,
                    aFactor: aFactor, bFactor: bFactor, scale: scale * aFactor * bFactor)
            }
        } catch {
            arena.deallocate()
            throw error
        }

        self.arena = arena
        self.byteCount = byteCount
        self.table = table
        self.shape = shape
        maxRank = projections.map(\.rank).max()!
        self.useRSLoRA = useRSLoRA
        targets = Set(projections.map(\.target))
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

/// `values` · 2^e rounded to halves, and 2^-e, the factor that undoes the scaling: e
/// puts the largest magnitude in [2^14, 2^15), below the half maximum 65504 even after
/// rounding. All-zero (or non-finite) matrices are stored unscaled.
private func roundToHalves(_ values: [Float]) -> ([Float16], Float) {
    let largest = values.reduce(Float(0)) { max($0, abs($1)) }
    let e = largest > 0 && largest.isFinite ? min(max(14 - Int(largest.exponent), -60), 60) : 0
    let up = Float(sign: .plus, exponent: e, significand: 1)
    return (values.map { Float16($0 * up) }, Float(sign: .plus, exponent: -e, significand: 1))
}
