import COpenBLAS
import CSIMD

// The low-rank side path of one projection, added to the base projection's output
// (never merged into the shared weights): out += scale · (x · Aᵀ) · B, with B given
// transposed. Weights are IEEE halves in LoRAPacking's layout (below), math is f32.
// x: (T, inDim) at row stride xStride; A: (rank, inDim); bT: (rank, outDim); out:
// (T, outDim) at row stride outStride.
//
// Two kernels, as in MatMul:
// - loraRowsForward (decode rows): every row has its own adapter (or none) and sums
//   alone in a fixed order, so its result never depends on the rest of the batch; all
//   rows of a projection run as one parallel job;
// - loraGemmForward (prompt chunks): rows of one adapter, two sgemm calls on the
//   weights unpacked to f32 scratch.

/// One decode row's side path: the row of x and out it reads and adds to, and its
/// adapter's weights for this projection.
public struct LoRARow {
    public var row: Int
    public var a: UnsafePointer<Float16>
    public var bT: UnsafePointer<Float16>
    public var rank: Int
    public var scale: Float

    public init(row: Int, a: UnsafePointer<Float16>, bT: UnsafePointer<Float16>, rank: Int, scale: Float) {
        (self.row, self.a, self.bT, self.rank, self.scale) = (row, a, bT, rank, scale)
    }
}

/// For each of `count` rows: out[row] += scale · B(A · x[row]), A and Bᵀ packed
/// (`LoRAPacking`). shrink: scratch of count · shrinkStride floats (shrinkStride ≥
/// every row's padded rank).
public func loraRowsForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int,
                            rows: UnsafePointer<LoRARow>, count: Int, inDim: Int, outDim: Int,
                            shrink: UnsafeMutablePointer<Float>, shrinkStride: Int) {
    guard count > 0 else { return }
    Parallel.forEachChunk(count) { chunk in
        for i in chunk {
            let r = rows[i]
            precondition(LoRAPacking.paddedRank(r.rank) <= shrinkStride, "rank \(r.rank) above the shrink stride \(shrinkStride)")
            loraRowForward(out: out + r.row &* outStride, x: x + r.row &* xStride, a: r.a, bT: r.bT,
                           rank: r.rank, inDim: inDim, outDim: outDim, scale: r.scale,
                           shrink: shrink + i &* shrinkStride)
        }
    }
}

// One row: s = scale · A·x, then out += Σ_r s[r]·Bᵀ[r] with r in order. Each output
// element and each s[r] has one summation order whatever the grouping around it, so a
// row's result never depends on other rows. shrink: paddedRank(rank) floats.
@inlinable
public func loraRowForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                           a: UnsafePointer<Float16>, bT: UnsafePointer<Float16>,
                           rank: Int, inDim: Int, outDim: Int, scale: Float,
                           shrink s: UnsafeMutablePointer<Float>) {
    loraShrinkRow(s: s, x: x, a: a, rank: rank, inDim: inDim, scale: scale)
    loraExpandRow(out: out, s: s, bT: bT, rank: rank, outDim: outDim)
}

/// s[r] = scale · Σ_i A[r,i]·x[i] for r in 0..<paddedRank(rank) (zero for the padding
/// ranks). A packed: each group of four ranks is one contiguous stream of 8-element
/// blocks, [block][rank in group][8]; two groups go at a time, sharing each load of x.
@inlinable
public func loraShrinkRow(s: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, a: UnsafePointer<Float16>,
                          rank: Int, inDim: Int, scale: Float) {
    let groups = LoRAPacking.paddedRank(rank) / 4
    let fullBlocks = inDim / 8
    let groupBytes = LoRAPacking.paddedCols(inDim) &* 8  // 4 ranks × 2 bytes per column
    // x's last partial block, zero-padded: the packed A is zero there too. It is added
    // after the loop, not chosen inside it: a select there cost the loop a register and
    // put a spill on an accumulator's dependency chain.
    var xTail = SIMD8<Float>()
    for l in 0..<(inDim & 7) { xTail[l] = x[fullBlocks &* 8 &+ l] }
    let hasTail = inDim & 7 != 0
    var g = 0
    while g + 2 <= groups {
        var p = UnsafeRawPointer(a) + g &* groupBytes
        var c: Group32 = (.zero, .zero, .zero, .zero), d: Group32 = (.zero, .zero, .zero, .zero)
        for b in 0..<fullBlocks {
            let xv = UnsafeRawPointer(x + b &* 8).loadUnaligned(as: SIMD8<Float>.self)
            accumulateRankGroup(&c, p, xv)
            accumulateRankGroup(&d, p + groupBytes, xv)
            p += 64
        }
        if hasTail {
            accumulateRankGroup(&c, p, xTail)
            accumulateRankGroup(&d, p + groupBytes, xTail)
        }
        storeRankGroup(s + g &* 4, c, scale)
        storeRankGroup(s + (g &* 4 &+ 4), d, scale)
        g &+= 2
    }
    if g < groups {
        var p = UnsafeRawPointer(a) + g &* groupBytes
        var c: Group32 = (.zero, .zero, .zero, .zero)
        for b in 0..<fullBlocks {
            accumulateRankGroup(&c, p, UnsafeRawPointer(x + b &* 8).loadUnaligned(as: SIMD8<Float>.self))
            p += 64
        }
        if hasTail { accumulateRankGroup(&c, p, xTail) }
        storeRankGroup(s + g &* 4, c, scale)
    }
}

/// c.k += A[4g + k, block] · x[block] for one packed block of four ranks at p.
@usableFromInline @inline(__always)
func accumulateRankGroup(_ c: inout Group32, _ p: UnsafeRawPointer, _ xv: SIMD8<Float>) {
    c.0 = c.0.addingProduct(graft_load_f16x8(p), xv)
    c.1 = c.1.addingProduct(graft_load_f16x8(p + 16), xv)
    c.2 = c.2.addingProduct(graft_load_f16x8(p + 32), xv)
    c.3 = c.3.addingProduct(graft_load_f16x8(p + 48), xv)
}

@usableFromInline @inline(__always)
func storeRankGroup(_ s: UnsafeMutablePointer<Float>, _ c: Group32, _ scale: Float) {
    (s[0], s[1], s[2], s[3]) = (c.0.sum() * scale, c.1.sum() * scale, c.2.sum() * scale, c.3.sum() * scale)
}

/// out[o] += Σ_r s[r]·Bᵀ[r,o], r in order. Bᵀ packed: each block of 8 outputs is one
/// contiguous run [rank][8]; four blocks go at a time for four independent FMA chains.
@inlinable
public func loraExpandRow(out: UnsafeMutablePointer<Float>, s: UnsafePointer<Float>, bT: UnsafePointer<Float16>,
                          rank: Int, outDim: Int) {
    let blockBytes = LoRAPacking.paddedRank(rank) &* 16
    let fullBlocks = outDim / 8
    var p = UnsafeRawPointer(bT)
    var o = 0
    var block = 0
    while block + 4 <= fullBlocks {
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
        for r in 0..<rank {
            let sr = SIMD8<Float>(repeating: s[r])
            let q = p + r &* 16
            c0 = c0.addingProduct(graft_load_f16x8(q), sr)
            c1 = c1.addingProduct(graft_load_f16x8(q + blockBytes), sr)
            c2 = c2.addingProduct(graft_load_f16x8(q + 2 &* blockBytes), sr)
            c3 = c3.addingProduct(graft_load_f16x8(q + 3 &* blockBytes), sr)
        }
        let w = UnsafeMutableRawPointer(out + o)
        w.storeBytes(of: w.loadUnaligned(as: SIMD8<Float>.self) + c0, as: SIMD8<Float>.self)
        (w + 32).storeBytes(of: (w + 32).loadUnaligned(as: SIMD8<Float>.self) + c1, as: SIMD8<Float>.self)
        (w + 64).storeBytes(of: (w + 64).loadUnaligned(as: SIMD8<Float>.self) + c2, as: SIMD8<Float>.self)
        (w + 96).storeBytes(of: (w + 96).loadUnaligned(as: SIMD8<Float>.self) + c3, as: SIMD8<Float>.self)
        p += 4 &* blockBytes
        o &+= 32
        block &+= 4
    }
    while o < outDim {
        var c = SIMD8<Float>()
        for r in 0..<rank { c = c.addingProduct(graft_load_f16x8(p + r &* 16), SIMD8<Float>(repeating: s[r])) }
        if o + 8 <= outDim {
            let w = UnsafeMutableRawPointer(out + o)
            w.storeBytes(of: w.loadUnaligned(as: SIMD8<Float>.self) + c, as: SIMD8<Float>.self)
        } else {
            for l in 0..<(outDim &- o) { out[o &+ l] += c[l] }
        }
        p += blockBytes
        o &+= 8
    }
}

/// out += scale · (x · Aᵀ) · Bᵀᵀ for T rows of one adapter via sgemm, A and Bᵀ packed.
/// scratch: floats for A and Bᵀ unpacked to f32, rank · (inDim + outDim); shrink: T ·
/// rank floats.
public func loraGemmForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                            x: UnsafePointer<Float>, xStride: Int, T: Int,
                            a: UnsafePointer<Float16>, bT: UnsafePointer<Float16>,
                            rank: Int, inDim: Int, outDim: Int, scale: Float,
                            scratch: UnsafeMutablePointer<Float>, shrink: UnsafeMutablePointer<Float>) {
    guard T > 0 else { return }
    let a32 = scratch, bT32 = scratch + rank * inDim
    LoRAPacking.unpackA(a32, a, rank: rank, inDim: inDim)
    LoRAPacking.unpackBT(bT32, bT, rank: rank, outDim: outDim)
    // shrink = x · Aᵀ  (T, rank)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(rank), Int32(inDim),
                1, x, Int32(xStride), a32, Int32(inDim), 0, shrink, Int32(rank))
    // out += scale · shrink · Bᵀᵀ  (T, outDim)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(outDim), Int32(rank),
                scale, shrink, Int32(rank), bT32, Int32(outDim), 1, out, Int32(outStride))
}

/// The kernels' layout of an adapter's halves, chosen so the decode kernels read each
/// matrix as one forward stream (with many distinct adapters in a batch the side path
/// streams every adapter's weights from memory each step):
/// - A (rank, inDim): ranks in groups of four (the last zero-padded), each group
///   [block of 8 columns][rank in group][8], columns zero-padded to a multiple of 8;
/// - Bᵀ (rank, outDim): [block of 8 outputs][rank, padded to 4][8], outputs
///   zero-padded to a multiple of 8.
public enum LoRAPacking {
    @inlinable public static func paddedRank(_ rank: Int) -> Int { (rank &+ 3) & ~3 }
    @inlinable public static func paddedCols(_ cols: Int) -> Int { (cols &+ 7) & ~7 }

    /// Halves a packed A or Bᵀ of `rank` rows and `cols` columns takes.
    public static func count(rank: Int, cols: Int) -> Int { paddedRank(rank) * paddedCols(cols) }

    /// Index in packed A of A[r, i].
    @inlinable static func aIndex(_ r: Int, _ i: Int, inDim: Int) -> Int {
        ((r / 4 * (paddedCols(inDim) / 8) + i / 8) * 4 + r % 4) * 8 + i % 8
    }

    /// Index in packed Bᵀ of Bᵀ[r, o].
    @inlinable static func bTIndex(_ r: Int, _ o: Int, rank: Int) -> Int {
        (o / 8 * paddedRank(rank) + r) * 8 + o % 8
    }

    /// Packs A (rank, inDim) row-major into `dst` (`count(rank:cols: inDim)` halves).
    public static func packA(_ dst: UnsafeMutablePointer<Float16>, _ a: UnsafePointer<Float16>, rank: Int, inDim: Int) {
        dst.update(repeating: 0, count: count(rank: rank, cols: inDim))
        for r in 0..<rank { for i in 0..<inDim { dst[aIndex(r, i, inDim: inDim)] = a[r * inDim + i] } }
    }

    /// Packs Bᵀ (rank, outDim) row-major into `dst` (`count(rank:cols: outDim)` halves).
    public static func packBT(_ dst: UnsafeMutablePointer<Float16>, _ bT: UnsafePointer<Float16>, rank: Int, outDim: Int) {
        dst.update(repeating: 0, count: count(rank: rank, cols: outDim))
        for r in 0..<rank { for o in 0..<outDim { dst[bTIndex(r, o, rank: rank)] = bT[r * outDim + o] } }
    }

    /// A (rank, inDim) row-major in f32 from packed A.
    public static func unpackA(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float16>, rank: Int, inDim: Int) {
        for r in 0..<rank { for i in 0..<inDim { dst[r * inDim + i] = Float(a[aIndex(r, i, inDim: inDim)]) } }
    }

    /// Bᵀ (rank, outDim) row-major in f32 from packed Bᵀ.
    public static func unpackBT(_ dst: UnsafeMutablePointer<Float>, _ bT: UnsafePointer<Float16>, rank: Int, outDim: Int) {
        for r in 0..<rank { for o in 0..<outDim { dst[r * outDim + o] = Float(bT[bTIndex(r, o, rank: rank)]) } }
    }
}
