// The rowwise path of MatMul.forward: out[t, r] = Σ_c x[t, c]·W[r, c] with the weights
// decoded in registers or in a small per-thread tile, for decode rows.
//
// One summation order for every output element, whichever kernel computes it: each
// weight is dequantized with one rounding (BlockDecoder.weights), each of eight lanes
// sums the columns c ≡ lane (mod 8) in column order, one fused multiply-add per
// column, acc_lane = fma(w_c, x_c, acc_lane), and out = acc.sum(). The kernels differ
// only in how many weight rows and activation rows they interleave, never in one
// element's order, so a row's result is bit-identical alone or in any batch.
//
// - One to three activation rows (single-stream decode): each weight group is decoded
//   in registers straight from the mapped file, four weight rows at a time.
// - Four or more: each thread dequantizes `tileRows` weight rows into its own scratch
//   once, then multiplies them with every activation row in register blocks of three
//   weight rows by four activation rows. Twelve accumulators share each load (seven
//   vector loads per twelve fused multiply-adds, against one load each when an
//   activation row meets a weight row alone): the batched product is bound by loads
//   on this machine, not by arithmetic (README: the measured difference).

import CSIMD

extension MatMul {
    /// Weight rows a thread dequantizes at a time for a batch: a multiple of the
    /// register block's three, as many as fit in 16 KB, so the tile and the four
    /// activation rows a block reads share the core's 32 KB L1 (12 rows of 576
    /// columns, 27 KB, overflowed it).
    @inlinable static func tileRows(cols: Int) -> Int {
        max(3, 16384 / (cols * 4) / 3 * 3)
    }

    @inlinable
    static func rowwiseForward<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, outStride: Int,
                                                x: UnsafePointer<Float>, xStride: Int, T: Int,
                                                weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                                prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        let tileRows = tileRows(cols: w.cols)
        precondition(tileRows <= gemmTileRows, "rowwise tile exceeds its scratch")
        Parallel.forEachChunk(w.rows, minChunk: 32) { chunk, participant in
            let tile = scratch + participant * gemmTileRows * w.cols
            withPrefetchParts(chunk, of: w.rows, prefetch) { rows, span in
                guard T >= 4 else {
                    var cursor = PrefetchCursor(span)
                    for t in 0..<T {
                        dotRows1(D.self, out: out + t * outStride, x: x + t * xStride, weight: w, rows: rows, prefetch: &cursor)
                    }
                    return
                }
                // Spread over the products, which take far longer than the decoding:
                // one step per register block (about one per three rows by four).
                var cursor = PrefetchCursor(span, steps: (rows.count + 2) / 3 * ((T + 3) / 4))
                var r = rows.lowerBound
                while r < rows.upperBound {
                    let n = min(tileRows, rows.upperBound - r)
                    decodeTile(D.self, weight: w, rows: r..<(r + n), into: tile)
                    tileProduct(tile: tile, rows: n, cols: w.cols, out: out + r, outStride: outStride,
                                x: x, xStride: xStride, T: T, prefetch: &cursor)
                    r += n
                }
            }
        }
    }

    /// acc + Σ w·x over one group of 32, lane by lane in column order.
    @inlinable @inline(__always)
    static func groupDot(_ acc: SIMD8<Float>, _ w: Group32, _ x: UnsafePointer<Float>, _ offset: Int) -> SIMD8<Float> {
        let p = UnsafeRawPointer(x + offset)
        var s = acc.addingProduct(w.0, p.loadUnaligned(as: SIMD8<Float>.self))
        s = s.addingProduct(w.1, p.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        s = s.addingProduct(w.2, p.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
        return s.addingProduct(w.3, p.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
    }

    /// One activation row against the weight rows, four weight rows at a time (four
    /// independent chains keep the FMA units busy).
    @inlinable
    static func dotRows1<D: BlockDecoder>(_: D.Type, out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                                          weight w: WeightMatrix, rows: Range<Int>, prefetch: inout PrefetchCursor) {
        let groups = w.cols / 32
        let stride = w.rowByteCount
        // At least one group per 64-byte line, so the prefetches below reach every line.
        let groupsPerLine = max(1, 64 / D.groupByteCount)
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
            for g in 0..<groups {
                // The next four rows, a line per row as each line's worth of groups
                // goes by: the hardware prefetcher alone ramps up too slowly on these
                // short jobs.
                if g % groupsPerLine == 0 {
                    graft_prefetch(p + 4 &* stride)
                    graft_prefetch(p + 5 &* stride)
                    graft_prefetch(p + 6 &* stride)
                    graft_prefetch(p + 7 &* stride)
                }
                prefetch.advance()
                let o = g &* 32
                a = groupDot(a, D.weights(p), x, o)
                b = groupDot(b, D.weights(p + stride), x, o)
                c = groupDot(c, D.weights(p + 2 &* stride), x, o)
                d = groupDot(d, D.weights(p + 3 &* stride), x, o)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            out[r + 1] = b.sum()
            out[r + 2] = c.sum()
            out[r + 3] = d.sum()
            r += 4
        }
        while r < rows.upperBound {
            var p = w.row(r)
            var a = SIMD8<Float>()
            for g in 0..<groups {
                a = groupDot(a, D.weights(p), x, g &* 32)
                p += D.groupByteCount
            }
            out[r] = a.sum()
            r += 1
        }
    }

    /// Dequantizes weight rows `rows` into `tile` (row-major, `cols` floats per row).
    @inlinable
    static func decodeTile<D: BlockDecoder>(_: D.Type, weight w: WeightMatrix, rows: Range<Int>,
                                            into tile: UnsafeMutablePointer<Float>) {
        var o = UnsafeMutableRawPointer(tile)
        for r in rows {
            var p = w.row(r)
            for _ in 0..<(w.cols / 32) {
                storeGroup(D.weights(p), at: o)
                o += 128
                p += D.groupByteCount
            }
        }
    }

    /// out[t, i] = tile row i · x row t for the tile's `rows` rows and all T activation
    /// rows: blocks of three tile rows by four activation rows, then single pairs for
    /// what is left over.
    @usableFromInline
    static func tileProduct(tile: UnsafePointer<Float>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>,
                            outStride: Int, x: UnsafePointer<Float>, xStride: Int, T: Int,
                            prefetch: inout PrefetchCursor) {
        var t = 0
        while t + 4 <= T {
            var i = 0
            while i + 3 <= rows {
                product3x4(tile + i * cols, cols: cols, out: out + t * outStride + i, outStride: outStride,
                           x: x + t * xStride, xStride: xStride)
                prefetch.advance()
                i += 3
            }
            for i in i..<rows {
                for k in t..<(t + 4) { out[k * outStride + i] = product1x1(tile + i * cols, x + k * xStride, cols: cols) }
                prefetch.advance()
            }
            t += 4
        }
        for k in t..<T {
            for i in 0..<rows { out[k * outStride + i] = product1x1(tile + i * cols, x + k * xStride, cols: cols) }
            prefetch.advance()
        }
    }

    /// Three consecutive tile rows (at `w`) by four activation rows.
    @inlinable @inline(__always)
    static func product3x4(_ w: UnsafePointer<Float>, cols: Int, out: UnsafeMutablePointer<Float>, outStride: Int,
                           x: UnsafePointer<Float>, xStride: Int) {
        let w0 = UnsafeRawPointer(w), w1 = UnsafeRawPointer(w + cols), w2 = UnsafeRawPointer(w + 2 * cols)
        let x0 = UnsafeRawPointer(x), x1 = UnsafeRawPointer(x + xStride)
        let x2 = UnsafeRawPointer(x + 2 * xStride), x3 = UnsafeRawPointer(x + 3 * xStride)
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
        var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>(), a23 = SIMD8<Float>()
        var offset = 0
        let end = cols &* 4
        while offset < end {
            let u = w0.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let v = w1.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let s = w2.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            var c = x0.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            a00 = a00.addingProduct(u, c); a10 = a10.addingProduct(v, c); a20 = a20.addingProduct(s, c)
            c = x1.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            a01 = a01.addingProduct(u, c); a11 = a11.addingProduct(v, c); a21 = a21.addingProduct(s, c)
            c = x2.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            a02 = a02.addingProduct(u, c); a12 = a12.addingProduct(v, c); a22 = a22.addingProduct(s, c)
            c = x3.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            a03 = a03.addingProduct(u, c); a13 = a13.addingProduct(v, c); a23 = a23.addingProduct(s, c)
            offset &+= 32
        }
        out[0] = a00.sum(); out[1] = a10.sum(); out[2] = a20.sum()
        out[outStride] = a01.sum(); out[outStride + 1] = a11.sum(); out[outStride + 2] = a21.sum()
        out[2 * outStride] = a02.sum(); out[2 * outStride + 1] = a12.sum(); out[2 * outStride + 2] = a22.sum()
        out[3 * outStride] = a03.sum(); out[3 * outStride + 1] = a13.sum(); out[3 * outStride + 2] = a23.sum()
    }

    /// One tile row by one activation row, in the same lane order.
    @inlinable @inline(__always)
    static func product1x1(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, cols: Int) -> Float {
        let wp = UnsafeRawPointer(w), xp = UnsafeRawPointer(x)
        var acc = SIMD8<Float>()
        var offset = 0
        while offset < cols &* 4 {
            acc = acc.addingProduct(wp.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self),
                                    xp.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self))
            offset &+= 32
        }
        return acc.sum()
    }
}
