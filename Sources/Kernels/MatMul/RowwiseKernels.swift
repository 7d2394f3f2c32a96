// The rowwise path of MatMul.forward: out[t, r] = Σ_c x[t, c]·W[r, c] with the weight
// groups decoded in registers, for decode rows.
//
// One summation order for every output element, whichever kernel computes it:
//   acc    (8 lanes) += scale_g · (q_g0·x_g0 + q_g1·x_g1 + q_g2·x_g2 + q_g3·x_g3)
//   offset (scalar)  += offset_g · Σ x_g
// group after group, then out = acc.sum() + offset. The kernels differ only in how
// many weight rows and activation rows they interleave, never in one element's order,
// so a row's result is bit-identical alone or in any batch.
//
// Applying the group's scale and offset once per group instead of per element saves
// work, and it leaves one multiply-add per group on the accumulator's dependency chain:
// the four products inside a group start fresh, so the groups overlap in the pipeline.

import CSIMD

extension MatMul {
    @inlinable
    static func rowwiseForward<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                                x: UnsafePointer<Float>, xStride: Int, T: Int,
                                                weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                                prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        let groups = w.cols / 32
        precondition(T * groups <= scratchCount(cols: w.cols), "rowwise product of \(T) rows exceeds its scratch")
        // Σ x per group, group-major (sums[g·T + t]) so eight rows' sums are one load.
        let sums = scratch
        if D.hasOffset {
            for t in 0..<T {
                let row = UnsafeRawPointer(x + t * xStride)
                for g in 0..<groups {
                    let p = row + g * 128
                    let v = p.loadUnaligned(as: SIMD8<Float>.self) + p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                        + p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
                        + p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
                    sums[g * T + t] = v.sum()
                }
            }
        }
        Parallel.forEachChunk(w.rows, minChunk: 32) { chunk in
            withPrefetchParts(chunk, of: w.rows, prefetch) { rows, span in
                var cursor = PrefetchCursor(span)
                var t = 0
                while t + 8 <= T {
                    dotRows8(D.self, out: out + t * outStride, outStride: outStride, x: x + t * xStride, xStride: xStride,
                             sums: sums + t, sumStride: T, weight: w, rows: rows, prefetch: &cursor)
                    t += 8
                }
                if t + 4 <= T {
                    dotRows4(D.self, out: out + t * outStride, outStride: outStride, x: x + t * xStride, xStride: xStride,
                             sums: sums + t, sumStride: T, weight: w, rows: rows, prefetch: &cursor)
                    t += 4
                }
                while t < T {
                    dotRows1(D.self, out: out + t * outStride, x: x + t * xStride,
                             sums: sums + t, sumStride: T, weight: w, rows: rows, prefetch: &cursor)
                    t += 1
                }
            }
        }
    }

    /// Σ q·x over one group of 32, as eight lanes: the per-group part of the order above.
    @inlinable @inline(__always)
    static func groupDot(_ q: Group32, _ x: UnsafePointer<Float>, _ offset: Int) -> SIMD8<Float> {
        let p = UnsafeRawPointer(x + offset)
        var s = q.0 * p.loadUnaligned(as: SIMD8<Float>.self)
        s = s.addingProduct(q.1, p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        s = s.addingProduct(q.2, p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
        return s.addingProduct(q.3, p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }

    /// One activation row against the weight rows, four weight rows at a time.
    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                                          sums: UnsafePointer<Float>, sumStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>, prefetch: inout PrefetchCursor) {
        let groups = w.cols / 32
        let stride = w.rowByteCount
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            var offsets = SIMD4<Float>()  // lane i: weight row r + i
            for g in 0..<groups {
                // The next four rows, a line per row every four groups: the hardware
                // prefetcher alone ramps up too slowly on these short jobs.
                if g & 3 == 0 {
                    graft_prefetch(p + 4 &* stride)
                    graft_prefetch(p + 5 &* stride)
                    graft_prefetch(p + 6 &* stride)
                    graft_prefetch(p + 7 &* stride)
                }
                prefetch.advance()
                let o = g &* 32
                let qa = D.quants(p), qb = D.quants(p + stride)
                let qc = D.quants(p + 2 &* stride), qd = D.quants(p + 3 &* stride)
                a = a.addingProduct(groupDot(qa.q, x, o), SIMD8(repeating: qa.scale))
                b = b.addingProduct(groupDot(qb.q, x, o), SIMD8(repeating: qb.scale))
                c = c.addingProduct(groupDot(qc.q, x, o), SIMD8(repeating: qc.scale))
                d = d.addingProduct(groupDot(qd.q, x, o), SIMD8(repeating: qd.scale))
                if D.hasOffset {
                    offsets = offsets.addingProduct(SIMD4(qa.offset, qb.offset, qc.offset, qd.offset),
                                                    SIMD4(repeating: sums[g &* sumStride]))
                }
                p += D.groupByteCount
            }
            out[r] = a.sum() + offsets[0]
            out[r + 1] = b.sum() + offsets[1]
            out[r + 2] = c.sum() + offsets[2]
            out[r + 3] = d.sum() + offsets[3]
            r += 4
        }
        while r < rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>()
            var offset: Float = 0
            for g in 0..<groups {
                let qa = D.quants(p)
                a = a.addingProduct(groupDot(qa.q, x, g &* 32), SIMD8(repeating: qa.scale))
                if D.hasOffset { offset = offset.addingProduct(qa.offset, sums[g &* sumStride]) }
                p += D.groupByteCount
            }
            out[r] = a.sum() + offset
            r += 1
        }
    }

    /// Four activation rows against the weight rows: each weight group is decoded once.
    @inlinable
    static func dotRows4<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          sums: UnsafePointer<Float>, sumStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>, prefetch: inout PrefetchCursor) {
        let groups = w.cols / 32
        let x1 = x + xStride, x2 = x + 2 * xStride, x3 = x + 3 * xStride
        for r in rows {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            var offsets = SIMD4<Float>()  // lane t: activation row t
            for g in 0..<groups {
                prefetch.advance()
                let v = D.quants(p)
                let o = g &* 32
                let scale = SIMD8<Float>(repeating: v.scale)
                a = a.addingProduct(groupDot(v.q, x, o), scale)
                b = b.addingProduct(groupDot(v.q, x1, o), scale)
                c = c.addingProduct(groupDot(v.q, x2, o), scale)
                d = d.addingProduct(groupDot(v.q, x3, o), scale)
                if D.hasOffset {
                    offsets = offsets.addingProduct(
                        SIMD4(repeating: v.offset),
                        UnsafeRawPointer(sums + g &* sumStride).loadUnaligned(as: SIMD4<Float>.self))
                }
                p += D.groupByteCount
            }
            out[r] = a.sum() + offsets[0]
            out[outStride + r] = b.sum() + offsets[1]
            out[2 * outStride + r] = c.sum() + offsets[2]
            out[3 * outStride + r] = d.sum() + offsets[3]
        }
    }

    /// Eight activation rows against the weight rows: each weight group is decoded once
    /// for eight rows, an eighth of the weight traffic of eight single rows.
    @inlinable
    static func dotRows8<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                          x: UnsafePointer<Float>, xStride: Int,
                                          sums: UnsafePointer<Float>, sumStride: Int,
                                          weight w: WeightMatrix, rows: Range<Int>, prefetch: inout PrefetchCursor) {
        let groups = w.cols / 32
        for r in rows {
            var p = w.row(r)
            var acc = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                       SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            var offsets = SIMD8<Float>()  // lane t: activation row t
            for g in 0..<groups {
                prefetch.advance()
                let v = D.quants(p)
                let o = g &* 32
                let scale = SIMD8<Float>(repeating: v.scale)
                acc.0 = acc.0.addingProduct(groupDot(v.q, x, o), scale)
                acc.1 = acc.1.addingProduct(groupDot(v.q, x + xStride, o), scale)
                acc.2 = acc.2.addingProduct(groupDot(v.q, x + 2 &* xStride, o), scale)
                acc.3 = acc.3.addingProduct(groupDot(v.q, x + 3 &* xStride, o), scale)
                acc.4 = acc.4.addingProduct(groupDot(v.q, x + 4 &* xStride, o), scale)
                acc.5 = acc.5.addingProduct(groupDot(v.q, x + 5 &* xStride, o), scale)
                acc.6 = acc.6.addingProduct(groupDot(v.q, x + 6 &* xStride, o), scale)
                acc.7 = acc.7.addingProduct(groupDot(v.q, x + 7 &* xStride, o), scale)
                if D.hasOffset {
                    offsets = offsets.addingProduct(
                        SIMD8(repeating: v.offset),
                        UnsafeRawPointer(sums + g &* sumStride).loadUnaligned(as: SIMD8<Float>.self))
                }
                p += D.groupByteCount
            }
            out[r] = acc.0.sum() + offsets[0]
            out[outStride + r] = acc.1.sum() + offsets[1]
            out[2 * outStride + r] = acc.2.sum() + offsets[2]
            out[3 * outStride + r] = acc.3.sum() + offsets[3]
            out[4 * outStride + r] = acc.4.sum() + offsets[4]
            out[5 * outStride + r] = acc.5.sum() + offsets[5]
            out[6 * outStride + r] = acc.6.sum() + offsets[6]
            out[7 * outStride + r] = acc.7.sum() + offsets[7]
        }
    }
}
