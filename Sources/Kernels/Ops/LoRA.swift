import CSIMD

// The low-rank side path of one projection, added to the base projection's output
// (never merged into the shared weights): out += scale · (x · Aᵀ) · B, with B given
// transposed. Weights are halves or int8 (LoRAWeightPrecision) in LoRAPacking's layout
// (below); int8 ranks carry a scale each, applied to x · Aᵀ. Math is f32, except for
// decode rows with int8 weights, which multiply in integers (CSIMD's lora_int8.h: x and
// the rank values rounded to int16, every sum exact).
// x: (T, inDim) at row stride xStride; A: (rank, inDim); bT: (rank, outDim); out:
// (T, outDim) at row stride outStride.
//
// Two kernels, as in MatMul:
// - loraRowsForward (decode rows): every row has its own adapter (or none) and sums
//   in a fixed order of its own, so its result never depends on the rest of the batch
//   (rows going two at a time share loads or memory streams, never sums); all rows of
//   a projection run as one parallel job;
// - loraGemmForward (prompt chunks): rows of one adapter, two RowInvariantGEMM
//   products on the weights unpacked to f32 scratch.

/// One decode row's side path: the row of x and out it reads and adds to, and its
/// adapter's weights for this projection.
public struct LoRARow {
    public var row: Int
    public var a: UnsafeRawPointer
    public var bT: UnsafeRawPointer
    public var precision: LoRAWeightPrecision
    public var rank: Int
    public var scale: Float
    /// Per rank, multiplying (x · Aᵀ)[r] after `scale`: int8 weights' own scales; nil
    /// for halves.
    public var rankScales: UnsafePointer<Float>?

    public init(row: Int, a: UnsafeRawPointer, bT: UnsafeRawPointer, precision: LoRAWeightPrecision, rank: Int,
                scale: Float, rankScales: UnsafePointer<Float>?) {
        precondition((precision == .int8) == (rankScales != nil), "int8 weights, and only they, have rank scales")
        (self.row, self.a, self.bT, self.precision, self.rank, self.scale, self.rankScales)
            = (row, a, bT, precision, rank, scale, rankScales)
    }

    /// Half weights.
    public init(row: Int, a: UnsafePointer<Float16>, bT: UnsafePointer<Float16>, rank: Int, scale: Float) {
        self.init(row: row, a: a, bT: bT, precision: .f16, rank: rank, scale: scale, rankScales: nil)
    }
}

/// For each of `count` rows: out[row] += scale · B(A · x[row]), A and Bᵀ packed
/// (`LoRAPacking`). shrink: scratch of count · shrinkStride floats (shrinkStride ≥
/// every row's padded rank). Rows go two at a time where they can: neighbouring rows of
/// one adapter (the engine orders rows by adapter) share each load of its weights, and
/// int8 rows of two adapters of one rank stream both adapters' weights in one pass.
public func loraRowsForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int,
                            rows: UnsafePointer<LoRARow>, count: Int, inDim: Int, outDim: Int,
                            shrink: UnsafeMutablePointer<Float>, shrinkStride: Int) {
    guard count > 0 else { return }
    Parallel.forEachChunk(count) { chunk in
        var i = chunk.lowerBound
        while i < chunk.upperBound {
            let r = rows[i]
            precondition(LoRAPacking.paddedRank(r.rank) <= shrinkStride, "rank \(r.rank) above the shrink stride \(shrinkStride)")
            let next = i + 1 < chunk.upperBound ? rows[i + 1] : nil
            switch r.precision {
            case .f16:
                let pair = next?.sharesWeights(with: r) ?? false
                let second = pair ? rows[i + 1].row : r.row
                loraSidePath(pair: pair, out: (out + r.row &* outStride, out + second &* outStride),
                             x: (x + r.row &* xStride, x + second &* xStride), a: r.a, bT: r.bT, rank: r.rank,
                             inDim: inDim, outDim: outDim, scale: r.scale,
                             shrink: (shrink + i &* shrinkStride, shrink + (i &+ 1) &* shrinkStride))
                i &+= pair ? 2 : 1
            case .int8:
                var first = r.int8Weights
                if let next, next.precision == .int8, next.rank == r.rank {
                    var second = next.int8Weights
                    graft_lora_int8_rows(out + r.row &* outStride, out + next.row &* outStride, x + r.row &* xStride,
                                         x + next.row &* xStride, &first, &second, r.rank, inDim, outDim)
                    i &+= 2
                } else {
                    graft_lora_int8_rows(out + r.row &* outStride, nil, x + r.row &* xStride, nil, &first, nil,
                                         r.rank, inDim, outDim)
                    i &+= 1
                }
            }
        }
    }
}

extension LoRARow {
    /// Whether both rows apply the same matrices with the same scale.
    @inlinable func sharesWeights(with other: LoRARow) -> Bool {
        a == other.a && bT == other.bT && precision == other.precision && rank == other.rank && scale == other.scale
            && rankScales == other.rankScales
    }

    /// The int8 kernel's view of this row's weights.
    var int8Weights: graft_lora_int8_t {
        graft_lora_int8_t(a: a, bT: bT, scale: scale, rankScales: rankScales)
    }
}

/// Two pointers, one per row of a pair; the second is ignored for a single row.
public typealias RowPair<P> = (P, P)

// Half weights, one row or two rows of one adapter: s = scale · A·x, then out +=
// Σ_r s[r]·Bᵀ[r] with r in order. Each output element and each s[r]
// has one summation order whatever the grouping around it (a pair shares loads, never
// sums), so a row's result never depends on other rows. `pair` is a constant at each
// call site, so the single-row body carries none of the pair's work. shrink:
// paddedRank(rank) floats per row.
@inlinable @inline(__always)
func loraSidePath(pair: Bool, out: RowPair<UnsafeMutablePointer<Float>>,
                  x: RowPair<UnsafePointer<Float>>, a: UnsafeRawPointer, bT: UnsafeRawPointer,
                  rank: Int, inDim: Int, outDim: Int, scale: Float,
                  shrink: RowPair<UnsafeMutablePointer<Float>>) {
    let s = (UnsafePointer(shrink.0), UnsafePointer(shrink.1))
    if pair {
        loraShrink(pair: true, s: shrink, x: x, a: a, rank: rank, inDim: inDim, scale: scale)
        loraExpand(pair: true, out: out, s: s, bT: bT, rank: rank, outDim: outDim)
    } else {
        loraShrink(pair: false, s: shrink, x: x, a: a, rank: rank, inDim: inDim, scale: scale)
        loraExpand(pair: false, out: out, s: s, bT: bT, rank: rank, outDim: outDim)
    }
}

/// s[r] *= rankScales[r] for r < rank, when there are rank scales.
@inlinable @inline(__always)
func applyRankScales(_ rankScales: UnsafePointer<Float>?, _ s: UnsafeMutablePointer<Float>, _ rank: Int) {
    guard let rankScales else { return }
    for r in 0..<rank { s[r] *= rankScales[r] }
}

/// s[r] = scale · Σ_i A[r,i]·x[i] for r in 0..<paddedRank(rank) (zero for the padding
/// ranks), for one row or a pair. A packed: each group of four ranks is one contiguous
/// stream of 8-element blocks, [block][rank in group][8]. Eight accumulators: two rank
/// groups of one row sharing each load of x, or one group of two rows sharing each
/// load of A.
@inlinable @inline(__always)
func loraShrink(pair: Bool, s: RowPair<UnsafeMutablePointer<Float>>,
                x: RowPair<UnsafePointer<Float>>, a: UnsafeRawPointer, rank: Int, inDim: Int,
                scale: Float) {
    let groups = LoRAPacking.paddedRank(rank) / 4
    let fullBlocks = inDim / 8
    let blockBytes = 32 &* MemoryLayout<Float16>.size  // 4 ranks × 8 columns
    let groupBytes = LoRAPacking.paddedCols(inDim) &* 4 &* MemoryLayout<Float16>.size
    // x's last partial block, zero-padded: the packed A is zero there too. It is added
    // after the loop, not chosen inside it: a select there cost the loop a register and
    // put a spill on an accumulator's dependency chain.
    let hasTail = inDim & 7 != 0
    let tail = (partialBlock(x.0, inDim), pair ? partialBlock(x.1, inDim) : SIMD8<Float>())
    @inline(__always) func xBlock(_ x: UnsafePointer<Float>, _ b: Int) -> SIMD8<Float> {
        UnsafeRawPointer(x + b &* 8).loadUnaligned(as: SIMD8<Float>.self)
    }
    var g = 0
    while g < groups {
        // A pair takes one group at a time; a single row two when there are two left.
        let twoGroups = !pair && g + 2 <= groups
        let p = a + g &* groupBytes
        var c: Group32 = (.zero, .zero, .zero, .zero), d: Group32 = (.zero, .zero, .zero, .zero)
        if pair {
            for b in 0..<fullBlocks { accumulateRankGroup(&c, &d, p + b &* blockBytes, xBlock(x.0, b), xBlock(x.1, b)) }
            if hasTail { accumulateRankGroup(&c, &d, p + fullBlocks &* blockBytes, tail.0, tail.1) }
            storeRankGroup(s.0 + g &* 4, c, scale)
            storeRankGroup(s.1 + g &* 4, d, scale)
            g &+= 1
        } else if twoGroups {
            for b in 0..<fullBlocks {
                let xv = xBlock(x.0, b)
                accumulateRankGroup(&c, p + b &* blockBytes, xv)
                accumulateRankGroup(&d, p + groupBytes + b &* blockBytes, xv)
            }
            if hasTail {
                accumulateRankGroup(&c, p + fullBlocks &* blockBytes, tail.0)
                accumulateRankGroup(&d, p + groupBytes + fullBlocks &* blockBytes, tail.0)
            }
            storeRankGroup(s.0 + g &* 4, c, scale)
            storeRankGroup(s.0 + (g &* 4 &+ 4), d, scale)
            g &+= 2
        } else {
            for b in 0..<fullBlocks { accumulateRankGroup(&c, p + b &* blockBytes, xBlock(x.0, b)) }
            if hasTail { accumulateRankGroup(&c, p + fullBlocks &* blockBytes, tail.0) }
            storeRankGroup(s.0 + g &* 4, c, scale)
            g &+= 1
        }
    }
}

/// The columns of x past its last full block of 8, zero-padded to a block.
@inlinable @inline(__always)
func partialBlock(_ x: UnsafePointer<Float>, _ count: Int) -> SIMD8<Float> {
    var v = SIMD8<Float>()
    let first = count & ~7
    for l in 0..<(count & 7) { v[l] = x[first &+ l] }
    return v
}

/// c.k += A[4g + k, block] · x[block] for one packed block of four ranks at p.
@usableFromInline @inline(__always)
func accumulateRankGroup(_ c: inout Group32, _ p: UnsafeRawPointer, _ xv: SIMD8<Float>) {
    let e = 8 &* MemoryLayout<Float16>.size
    c.0 = c.0.addingProduct(graft_load_f16x8(p), xv)
    c.1 = c.1.addingProduct(graft_load_f16x8(p + e), xv)
    c.2 = c.2.addingProduct(graft_load_f16x8(p + 2 &* e), xv)
    c.3 = c.3.addingProduct(graft_load_f16x8(p + 3 &* e), xv)
}

/// The same for two rows at once: each eighth of A is widened once for both.
@usableFromInline @inline(__always)
func accumulateRankGroup(_ c: inout Group32, _ d: inout Group32, _ p: UnsafeRawPointer,
                         _ x0: SIMD8<Float>, _ x1: SIMD8<Float>) {
    let e = 8 &* MemoryLayout<Float16>.size
    var w = graft_load_f16x8(p)
    c.0 = c.0.addingProduct(w, x0); d.0 = d.0.addingProduct(w, x1)
    w = graft_load_f16x8(p + e)
    c.1 = c.1.addingProduct(w, x0); d.1 = d.1.addingProduct(w, x1)
    w = graft_load_f16x8(p + 2 &* e)
    c.2 = c.2.addingProduct(w, x0); d.2 = d.2.addingProduct(w, x1)
    w = graft_load_f16x8(p + 3 &* e)
    c.3 = c.3.addingProduct(w, x0); d.3 = d.3.addingProduct(w, x1)
}

@usableFromInline @inline(__always)
func storeRankGroup(_ s: UnsafeMutablePointer<Float>, _ c: Group32, _ scale: Float) {
    (s[0], s[1], s[2], s[3]) = (c.0.sum() * scale, c.1.sum() * scale, c.2.sum() * scale, c.3.sum() * scale)
}

/// out[o] += Σ_r s[r]·Bᵀ[r,o], r in order, for one row or a pair. Bᵀ packed: each
/// block of 8 outputs is one contiguous run [rank][8]. Eight accumulators: four output
/// blocks of one row, or two blocks of two rows sharing each widened load of Bᵀ.
@inlinable @inline(__always)
func loraExpand(pair: Bool, out: RowPair<UnsafeMutablePointer<Float>>,
                s: RowPair<UnsafePointer<Float>>, bT: UnsafeRawPointer, rank: Int, outDim: Int) {
    let rowBytes = 8 &* MemoryLayout<Float16>.size
    let blockBytes = LoRAPacking.paddedRank(rank) &* rowBytes
    let fullBlocks = outDim / 8
    let step = pair ? 2 : 4
    var p = bT
    var o = 0
    while o + step &* 8 <= fullBlocks &* 8 {
        var c: Group32 = (.zero, .zero, .zero, .zero)
        for r in 0..<rank {
            let q = p + r &* rowBytes
            let s0 = SIMD8<Float>(repeating: s.0[r])
            if pair {
                let s1 = SIMD8<Float>(repeating: s.1[r])
                var w = graft_load_f16x8(q)
                c.0 = c.0.addingProduct(w, s0); c.2 = c.2.addingProduct(w, s1)
                w = graft_load_f16x8(q + blockBytes)
                c.1 = c.1.addingProduct(w, s0); c.3 = c.3.addingProduct(w, s1)
            } else {
                c.0 = c.0.addingProduct(graft_load_f16x8(q), s0)
                c.1 = c.1.addingProduct(graft_load_f16x8(q + blockBytes), s0)
                c.2 = c.2.addingProduct(graft_load_f16x8(q + 2 &* blockBytes), s0)
                c.3 = c.3.addingProduct(graft_load_f16x8(q + 3 &* blockBytes), s0)
            }
        }
        if pair {
            addBlocks(out.0 + o, c.0, c.1)
            addBlocks(out.1 + o, c.2, c.3)
        } else {
            addBlocks(out.0 + o, c.0, c.1)
            addBlocks(out.0 + (o &+ 16), c.2, c.3)
        }
        p += step &* blockBytes
        o &+= step &* 8
    }
    while o < outDim {
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>()
        for r in 0..<rank {
            let w = graft_load_f16x8(p + r &* rowBytes)
            c0 = c0.addingProduct(w, SIMD8<Float>(repeating: s.0[r]))
            if pair { c1 = c1.addingProduct(w, SIMD8<Float>(repeating: s.1[r])) }
        }
        addBlock(out.0 + o, c0, count: outDim &- o)
        if pair { addBlock(out.1 + o, c1, count: outDim &- o) }
        p += blockBytes
        o &+= 8
    }
}

/// out[0..<16] += (u, v).
@inlinable @inline(__always)
func addBlocks(_ out: UnsafeMutablePointer<Float>, _ u: SIMD8<Float>, _ v: SIMD8<Float>) {
    addBlock(out, u, count: 8)
    addBlock(out + 8, v, count: 8)
}

/// out[0..<min(count, 8)] += c.
@inlinable @inline(__always)
func addBlock(_ out: UnsafeMutablePointer<Float>, _ c: SIMD8<Float>, count: Int) {
    if count >= 8 {
        let w = UnsafeMutableRawPointer(out)
        w.storeBytes(of: w.loadUnaligned(as: SIMD8<Float>.self) + c, as: SIMD8<Float>.self)
    } else {
        for l in 0..<count { out[l] += c[l] }
    }
}

/// Floats of scratch `loraGemmForward` needs: A and Bᵀ unpacked to f32, then packed
/// activation rows for the wider of its two products.
public func loraGemmScratchCount(rows: Int, rank: Int, inDim: Int, outDim: Int) -> Int {
    rank * (inDim + outDim) + RowInvariantGEMM.packedCount(rows: rows, cols: max(inDim, rank))
}

/// out += scale · (x · Aᵀ) · Bᵀᵀ for T rows of one adapter, A and Bᵀ packed (int8 ranks
/// scaled by rankScales, as the decode rows'); each row's result is independent of the
/// other rows (RowInvariantGEMM). scratch: `loraGemmScratchCount` floats; shrink:
/// T · rank floats.
public func loraGemmForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int, T: Int,
                            a: UnsafeRawPointer, bT: UnsafeRawPointer, precision: LoRAWeightPrecision = .f16,
                            rank: Int, inDim: Int, outDim: Int, scale: Float, rankScales: UnsafePointer<Float>? = nil,
                            scratch: UnsafeMutablePointer<Float>, shrink: UnsafeMutablePointer<Float>) {
    guard T > 0 else { return }
    let a32 = scratch, bT32 = scratch + rank * inDim, packed = bT32 + rank * outDim
    LoRAPacking.unpackA(a32, a, precision: precision, rank: rank, inDim: inDim)
    LoRAPacking.unpackBT(bT32, bT, precision: precision, rank: rank, outDim: outDim)
    // shrink = scale · x · Aᵀ  (T, rank)
    RowInvariantGEMM.pack(x, xStride: xStride, T: T, K: inDim, into: packed)
    Parallel.forEachChunk(rank, minChunk: RowInvariantGEMM.blockWeights) { ranks in
        RowInvariantGEMM.product(out: shrink + ranks.lowerBound, outStride: rank, packed: packed, T: T, K: inDim,
                                 w: a32, rowStride: inDim, colStride: 1, rows: ranks, accumulate: false)
    }
    for i in 0..<(T * rank) { shrink[i] *= scale }
    for t in 0..<T { applyRankScales(rankScales, shrink + t * rank, rank) }
    // out += shrink · B  (T, outDim), where B[o, r] = Bᵀ[r, o]
    RowInvariantGEMM.pack(shrink, xStride: rank, T: T, K: rank, into: packed)
    Parallel.forEachChunk(outDim, minChunk: 48) { outputs in
        RowInvariantGEMM.product(out: out + outputs.lowerBound, outStride: outStride, packed: packed, T: T, K: rank,
                                 w: bT32, rowStride: 1, colStride: outDim, rows: outputs, accumulate: true)
    }
}

/// The kernels' layout of an adapter's weights (halves or int8), chosen so the decode kernels read each
/// matrix as one forward stream (with many distinct adapters in a batch the side path
/// streams every adapter's weights from memory each step):
/// - A (rank, inDim): for halves, ranks in groups of four (the last zero-padded), each
///   group [block of 8 columns][rank in group][8]; for int8, [block of 8 columns][rank,
///   padded to 4][8], so the integer kernel's groups read side by side are one stream;
///   columns zero-padded to a multiple of 8;
/// - Bᵀ (rank, outDim): [block of 8 outputs][rank, padded to 4][8] for halves, and
///   [block of 8 outputs][pair of ranks][8][2] for int8; outputs zero-padded to a
///   multiple of 8.
public enum LoRAPacking {
    @inlinable public static func paddedRank(_ rank: Int) -> Int { (rank &+ 3) & ~3 }
    @inlinable public static func paddedCols(_ cols: Int) -> Int { (cols &+ 7) & ~7 }

    /// Elements a packed A or Bᵀ of `rank` rows and `cols` columns takes.
    public static func count(rank: Int, cols: Int) -> Int { paddedRank(rank) * paddedCols(cols) }

    /// Index in packed A of A[r, i].
    @inlinable static func aIndex(_ r: Int, _ i: Int, rank: Int, inDim: Int, precision: LoRAWeightPrecision) -> Int {
        switch precision {
        case .f16: ((r / 4 * (paddedCols(inDim) / 8) + i / 8) * 4 + r % 4) * 8 + i % 8
        case .int8: (i / 8 * paddedRank(rank) + r) * 8 + i % 8
        }
    }

    /// Index in packed Bᵀ of Bᵀ[r, o]. int8 ranks go in pairs, [block][pair][8][2], so
    /// that one vpmaddwd multiplies both ranks of a pair for eight outputs.
    @inlinable static func bTIndex(_ r: Int, _ o: Int, rank: Int, precision: LoRAWeightPrecision) -> Int {
        switch precision {
        case .f16: (o / 8 * paddedRank(rank) + r) * 8 + o % 8
        case .int8: (o / 8 * paddedRank(rank) + (r & ~1)) * 8 + (o % 8) * 2 + (r & 1)
        }
    }

    /// Packs half A (rank, inDim) row-major into `dst` (`count(rank:cols: inDim)` elements).
    public static func packA(_ dst: UnsafeMutablePointer<Float16>, _ a: UnsafePointer<Float16>, rank: Int, inDim: Int) {
        pack(dst, a, rank: rank, cols: inDim) { aIndex($0, $1, rank: rank, inDim: inDim, precision: .f16) }
    }

    /// Packs int8 A (rank, inDim) row-major into `dst` (`count(rank:cols: inDim)` bytes).
    public static func packA(_ dst: UnsafeMutablePointer<Int8>, _ a: UnsafePointer<Int8>, rank: Int, inDim: Int) {
        pack(dst, a, rank: rank, cols: inDim) { aIndex($0, $1, rank: rank, inDim: inDim, precision: .int8) }
    }

    /// Packs half Bᵀ (rank, outDim) row-major into `dst` (`count(rank:cols: outDim)` elements).
    public static func packBT(_ dst: UnsafeMutablePointer<Float16>, _ bT: UnsafePointer<Float16>, rank: Int, outDim: Int) {
        pack(dst, bT, rank: rank, cols: outDim) { bTIndex($0, $1, rank: rank, precision: .f16) }
    }

    /// Packs int8 Bᵀ (rank, outDim) row-major into `dst` (`count(rank:cols: outDim)` bytes).
    public static func packBT(_ dst: UnsafeMutablePointer<Int8>, _ bT: UnsafePointer<Int8>, rank: Int, outDim: Int) {
        pack(dst, bT, rank: rank, cols: outDim) { bTIndex($0, $1, rank: rank, precision: .int8) }
    }

    /// dst[index(r, c)] = m[r, c] for a row-major (rank, cols) m, every other element zero.
    private static func pack<E: Numeric>(_ dst: UnsafeMutablePointer<E>, _ m: UnsafePointer<E>, rank: Int, cols: Int,
                                         at index: (Int, Int) -> Int) {
        dst.update(repeating: 0, count: count(rank: rank, cols: cols))
        for r in 0..<rank { for c in 0..<cols { dst[index(r, c)] = m[r * cols + c] } }
    }

    /// A (rank, inDim) row-major in f32 from packed A, as stored (no scales applied).
    public static func unpackA(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafeRawPointer,
                               precision: LoRAWeightPrecision = .f16, rank: Int, inDim: Int) {
        for r in 0..<rank {
            for i in 0..<inDim { dst[r * inDim + i] = element(a, aIndex(r, i, rank: rank, inDim: inDim, precision: precision), precision) }
        }
    }

    /// Bᵀ (rank, outDim) row-major in f32 from packed Bᵀ, as stored (no scales applied).
    public static func unpackBT(_ dst: UnsafeMutablePointer<Float>, _ bT: UnsafeRawPointer,
                                precision: LoRAWeightPrecision = .f16, rank: Int, outDim: Int) {
        for r in 0..<rank { for o in 0..<outDim { dst[r * outDim + o] = element(bT, bTIndex(r, o, rank: rank, precision: precision), precision) } }
    }

    private static func element(_ p: UnsafeRawPointer, _ i: Int, _ precision: LoRAWeightPrecision) -> Float {
        switch precision {
        case .f16: Float(p.load(fromByteOffset: 2 * i, as: Float16.self))
        case .int8: Float(p.load(fromByteOffset: i, as: Int8.self))
        }
    }
}
