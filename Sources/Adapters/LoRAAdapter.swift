import Kernels

// A LoRA adapter in the layout the kernels use: for each (layer, projection) it touches,
// A (rank, inDim) and Bᵀ (rank, outDim) as IEEE halves (or int8, below) in the kernels'
// packed layout (LoRAPacking: each matrix one forward stream for the decode kernel), B's
// rows already in GGUF order.
// Halves take half the memory of f32 (32 rank-16 adapters on all seven projections of
// SmolLM2-135M: 313 MB instead of 625 MB), and the decode side path, which streams
// every adapter's weights once per step, reads half the bytes; the kernels widen to f32.
// Each matrix is multiplied by a power of two before rounding, chosen so its largest
// magnitude sits near the top of the half range: small trained weights keep 11
// significant bits instead of falling into subnormals, and large ones cannot overflow.
// The factor is undone exactly in the scale (`LoRAWeights.scale`). Halves rather than
// bfloat16: PEFT's reference logits (AdapterReferenceTests) differ by at most 5.1e-3
// with halves and 3.0e-2 with bfloat16 (4.4e-5 with f32), against a 1e-2 tolerance.
// With int8 (LoRAWeightPrecision.int8, asked for by the caller) each rank's row of A and
// of Bᵀ has its own scale, max |value| / 127, and the kernels apply the product of a
// rank's two scales to (x · Aᵀ)[r]: a quarter of f32's bytes, for the decode side path
// of many distinct adapters, which streams them all every step.
// All matrices live in one allocation (llm.c's malloc_and_point_parameters); the
// LoRAWeights views point into it. Immutable after init, hence safe to share.

/// Views of one projection's A and B; valid while the adapter that returned them is alive.
public struct LoRAWeights: @unchecked Sendable {
    /// A as (rank, inDim) row-major f32: the layout PEFT files hold.
    public func aRowMajor() -> [Float] {
        var out = [Float](repeating: 0, count: rank * inDim)
        out.withUnsafeMutableBufferPointer {
            LoRAPacking.unpackA($0.baseAddress!, a, precision: precision, rank: rank, inDim: inDim)
        }
        return out.enumerated().map { i, v in v * aScale(rank: i / inDim) }
    }

    /// B as (outDim, rank) row-major f32, GGUF row order: the layout PEFT files hold.
    public func bRowMajor() -> [Float] {
        var bT = [Float](repeating: 0, count: rank * outDim)
        bT.withUnsafeMutableBufferPointer {
            LoRAPacking.unpackBT($0.baseAddress!, self.bT, precision: precision, rank: rank, outDim: outDim)
        }
        return (0..<(outDim * rank)).map { i in bT[(i % rank) * outDim + i / rank] * bScale(rank: i % rank) }
    }

    /// What a stored element of A's rank r is multiplied by to give A.
    public func aScale(rank r: Int) -> Float { aRankScales?[r] ?? aFactor }
    /// What a stored element of Bᵀ's rank r is multiplied by to give Bᵀ.
    public func bScale(rank r: Int) -> Float { bRankScales?[r] ?? bFactor }

    public let precision: LoRAWeightPrecision
    /// A (rank, inDim) in LoRAPacking's layout, `precision` elements; the true A is each
    /// rank's row times aScale(rank:).
    public let a: UnsafeRawPointer
    /// Bᵀ (rank, outDim) in LoRAPacking's layout, B's rows (Bᵀ's columns) in GGUF order;
    /// the true Bᵀ is each rank's row times bScale(rank:).
    public let bT: UnsafeRawPointer
    public let rank: Int
    public let inDim: Int
    public let outDim: Int
    /// The projection's lora_alpha (PEFT's, or its alpha_pattern's).
    public let alpha: Float
    /// Halves: powers of two undoing the range scaling of `a` and `bT`. int8: 1.
    public let aFactor: Float
    public let bFactor: Float
    /// The projection's scale (alpha / rank, or alpha / sqrt(rank) with rank-stabilized
    /// LoRA) times both factors: the one multiplier the kernels apply to halves,
    /// out += scale · (x · aᵀ) · bTᵀᵀ.
    public let scale: Float
    /// int8 only, per rank: A's and Bᵀ's scales, and their product, which the kernels
    /// apply after `scale`.
    public let aRankScales: UnsafePointer<Float>?
    public let bRankScales: UnsafePointer<Float>?
    public let rankScales: UnsafePointer<Float>?

    /// The packed A and Bᵀ, in this order in the adapter's allocation, as one span.
    public var packedSpan: PrefetchSpan {
        let bytes = precision.bytesPerElement
        precondition(bT == a + linePadded(LoRAPacking.count(rank: rank, cols: inDim) * bytes),
                     "Bᵀ follows A in the adapter's allocation")
        return PrefetchSpan(start: a, byteCount: bT - a + LoRAPacking.count(rank: rank, cols: outDim) * bytes)
    }

    /// The decode kernels' description of `row`'s side path through these weights.
    public func row(_ row: Int) -> LoRARow {
        LoRARow(row: row, a: a, bT: bT, precision: precision, rank: rank, scale: scale, rankScales: rankScales)
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
    /// How A and B are stored.
    public let precision: LoRAWeightPrecision
    /// Bytes of the one allocation holding every A and B.
    public let byteCount: Int

    private let arena: UnsafeMutableRawPointer
    /// nLayers × 7 entries, indexed by layer * 7 + target.index.
    private let table: [LoRAWeights?]

    /// One rank and alpha for every projection given. `b` is in Hugging Face row order (as
    /// PEFT stores it); Q and K rows are permuted here.
    public convenience init(shape: BaseModelShape, rank: Int, alpha: Float, useRSLoRA: Bool,
                            precision: LoRAWeightPrecision = .f16,
                            tensors: [(layer: Int, target: LoRATarget, a: [Float], b: [Float])]) throws(AdapterError) {
        try self.init(shape: shape, useRSLoRA: useRSLoRA, precision: precision, projections: tensors.map {
            LoRAProjection(layer: $0.layer, target: $0.target, rank: rank, alpha: alpha)
        }) { i in (tensors[i].a, tensors[i].b) }
    }

    /// Each projection with its own rank and alpha, the values of projection i (A as
    /// (rank, inDim), B as (outDim, rank), row-major) asked for one at a time by
    /// `values(i)`, in order, so a loader never holds more than one projection's f32
    /// weights besides the stored ones (peak memory while loading).
    public init(shape: BaseModelShape, useRSLoRA: Bool, precision: LoRAWeightPrecision = .f16,
                projections: [LoRAProjection],
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

        // Each matrix starts on a 64-byte boundary so SIMD loads of a row start aligned;
        // int8 rank scales (three rows of floats a projection) follow all the matrices.
        let elementBytes = precision.bytesPerElement
        func packedBytes(_ t: LoRAProjection) -> (a: Int, bT: Int) {
            (linePadded(LoRAPacking.count(rank: t.rank, cols: shape.inputDim(t.target)) * elementBytes),
             linePadded(LoRAPacking.count(rank: t.rank, cols: shape.outputDim(t.target)) * elementBytes))
        }
        let matrixBytes = projections.reduce(0) { sum, t in sum + packedBytes(t).a + packedBytes(t).bT }
        let scaleCount = precision == .int8 ? projections.reduce(0) { $0 + 3 * $1.rank } : 0
        let byteCount = matrixBytes + scaleCount * MemoryLayout<Float>.stride
        let arena = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
        arena.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)

        var table = [LoRAWeights?](repeating: nil, count: shape.nLayers * 7)
        var next = arena
        var nextScale = (arena + matrixBytes).assumingMemoryBound(to: Float.self)
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
                guard aValues.allSatisfy(\.isFinite) else { throw .nonFiniteWeights(layer: t.layer, target: t.target, matrix: "A") }
                guard b.allSatisfy(\.isFinite) else { throw .nonFiniteWeights(layer: t.layer, target: t.target, matrix: "B") }
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
                let a = next, packedBT = next + packedBytes(t).a
                next = packedBT + packedBytes(t).bT
                let alphaScale = useRSLoRA ? t.alpha / Float(rank).squareRoot() : t.alpha / Float(rank)
                let weights: LoRAWeights
                switch precision {
                case .f16:
                    let (aHalves, aFactor) = roundToHalves(aValues)
                    let (bTHalves, bFactor) = roundToHalves(bT)
                    LoRAPacking.packA(a.assumingMemoryBound(to: Float16.self), aHalves, rank: rank, inDim: inDim)
                    LoRAPacking.packBT(packedBT.assumingMemoryBound(to: Float16.self), bTHalves, rank: rank, outDim: outDim)
                    weights = LoRAWeights(precision: .f16, a: a, bT: packedBT, rank: rank, inDim: inDim, outDim: outDim,
                                          alpha: t.alpha, aFactor: aFactor, bFactor: bFactor,
                                          scale: alphaScale * aFactor * bFactor,
                                          aRankScales: nil, bRankScales: nil, rankScales: nil)
                case .int8:
                    let (aBytes, aScales) = roundRanksToInt8(aValues, rank: rank)
                    let (bTBytes, bScales) = roundRanksToInt8(bT, rank: rank)
                    LoRAPacking.packA(a.assumingMemoryBound(to: Int8.self), aBytes, rank: rank, inDim: inDim)
                    LoRAPacking.packBT(packedBT.assumingMemoryBound(to: Int8.self), bTBytes, rank: rank, outDim: outDim)
                    let scales = nextScale
                    for r in 0..<rank {
                        (scales[r], scales[rank + r], scales[2 * rank + r]) = (aScales[r], bScales[r], aScales[r] * bScales[r])
                    }
                    nextScale += 3 * rank
                    weights = LoRAWeights(precision: .int8, a: a, bT: packedBT, rank: rank, inDim: inDim, outDim: outDim,
                                          alpha: t.alpha, aFactor: 1, bFactor: 1, scale: alphaScale,
                                          aRankScales: scales, bRankScales: scales + rank, rankScales: scales + 2 * rank)
                }
                table[t.layer * 7 + t.target.index] = weights
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
        self.precision = precision
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

/// Bytes rounded up to whole 64-byte lines.
func linePadded(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }

/// Each of the `rank` rows of `values` rounded to int8 with its own scale, max |value| /
/// 127 (0 for an all-zero row, whose values stay 0), nearest even on ties.
private func roundRanksToInt8(_ values: [Float], rank: Int) -> ([Int8], [Float]) {
    let cols = values.count / rank
    var bytes = [Int8](repeating: 0, count: values.count)
    var scales = [Float](repeating: 0, count: rank)
    for r in 0..<rank {
        let row = values[(r * cols)..<((r + 1) * cols)]
        let largest = row.reduce(Float(0)) { max($0, abs($1)) }
        guard largest > 0 else { continue }
        scales[r] = largest / 127
        for (i, v) in zip(row.indices, row) { bytes[i] = Int8(max(-127, min(127, (v / scales[r]).rounded(.toNearestOrEven)))) }
    }
    return (bytes, scales)
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
