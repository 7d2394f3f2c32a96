import CSIMD
import Kernels
import Testing

/// One adapter's weights for a test: A (rank×in) and B (out×rank) as halves, and A and
/// Bᵀ packed for the kernels.
private struct HalfLoRA {
    let rank: Int, inDim: Int, outDim: Int
    let a: [Float16]
    let b: [Float16]
    let packedA: [Float16]
    let packedBT: [Float16]

    init(rank: Int, inDim: Int, outDim: Int, rng: inout TestRandom) {
        (self.rank, self.inDim, self.outDim) = (rank, inDim, outDim)
        let a = rng.floats(rank * inDim).map { Float16($0) }
        let b = rng.floats(outDim * rank).map { Float16($0) }
        let bT = (0..<(rank * outDim)).map { b[($0 % outDim) * rank + $0 / outDim] }
        (self.a, self.b) = (a, b)
        packedA = pack(LoRAPacking.count(rank: rank, cols: inDim)) { LoRAPacking.packA($0, a, rank: rank, inDim: inDim) }
        packedBT = pack(LoRAPacking.count(rank: rank, cols: outDim)) { LoRAPacking.packBT($0, bT, rank: rank, outDim: outDim) }
    }

    /// scale · B(A x) for one row, naively in Double from the held halves.
    func reference(x: ArraySlice<Float>, scale: Float) -> [Double] {
        let x = Array(x)
        let ax = (0..<rank).map { r in (0..<inDim).reduce(0.0) { $0 + Double(a[r * inDim + $1]) * Double(x[$1]) } }
        return (0..<outDim).map { o in Double(scale) * (0..<rank).reduce(0.0) { $0 + Double(b[o * rank + $1]) * ax[$1] } }
    }
}

private func pack(_ count: Int, _ body: (UnsafeMutablePointer<Float16>) -> Void) -> [Float16] {
    var out = [Float16](repeating: .nan, count: count)
    out.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return out
}

@Suite struct LoRATests {
    @Test(arguments: [1, 3, 17])
    func gemmAddsScaledLowRankProduct(T: Int) {
        // Given a base output, inputs and random half A (rank×in), B (out×rank), passed as Bᵀ
        var rng = TestRandom(seed: 21 + UInt64(T))
        let inDim = 40, outDim = 24, rank = 5, scale: Float = 1.5
        let lora = HalfLoRA(rank: rank, inDim: inDim, outDim: outDim, rng: &rng)
        let x = rng.floats(T * inDim), base = rng.floats(T * outDim)
        var out = base
        var shrink = [Float](repeating: 0, count: T * rank)
        var scratch = [Float](repeating: 0, count: loraGemmScratchCount(rows: T, rank: rank, inDim: inDim, outDim: outDim))
        // When the side path is added by the prompt-chunk kernel
        loraGemmForward(out: &out, outStride: outDim, x: x, xStride: inDim, T: T, a: lora.packedA, bT: lora.packedBT,
                        rank: rank, inDim: inDim, outDim: outDim, scale: scale, scratch: &scratch, shrink: &shrink)
        // Then out = base + scale · B(A x), computed naively in Double
        for t in 0..<T {
            let side = lora.reference(x: x[(t * inDim)..<((t + 1) * inDim)], scale: scale)
            for o in 0..<outDim {
                #expect(abs(Double(out[t * outDim + o]) - (Double(base[t * outDim + o]) + side[o])) < 1e-4)
            }
        }
    }

    @Test func rowsEachTakeTheirOwnAdapter() {
        // Given 9 rows and three adapters of ranks 16, 5 and 1, dims that exercise the
        // 32-wide, 8-wide and scalar parts of both loops; rows 2 and 6 have no adapter
        var rng = TestRandom(seed: 5)
        let inDim = 77, outDim = 75, T = 9, stride = 16
        let adapters = [16, 5, 1].map { HalfLoRA(rank: $0, inDim: inDim, outDim: outDim, rng: &rng) }
        let scales: [Float] = [0.5, 2, -1]
        let assignment: [Int?] = [0, 1, nil, 2, 0, 0, nil, 1, 2]
        let x = rng.floats(T * inDim), base = rng.floats(T * outDim)
        var out = base
        var shrink = [Float](repeating: 0, count: T * stride)
        // When all rows run as one job (pointers stay valid: the arrays are not mutated)
        adapters.map(\.packedA).withPointers { aPointers in
            adapters.map(\.packedBT).withPointers { bPointers in
                let rows = assignment.enumerated().compactMap { t, k in
                    k.map { LoRARow(row: t, a: aPointers[$0], bT: bPointers[$0], rank: adapters[$0].rank, scale: scales[$0]) }
                }
                loraRowsForward(out: &out, outStride: outDim, x: x, xStride: inDim, rows: rows, count: rows.count,
                                inDim: inDim, outDim: outDim, shrink: &shrink, shrinkStride: stride)
            }
        }
        // Then each row is base + its adapter's side path (or just base)
        for t in 0..<T {
            let side = assignment[t].map { adapters[$0].reference(x: x[(t * inDim)..<((t + 1) * inDim)], scale: scales[$0]) }
                ?? [Double](repeating: 0, count: outDim)
            for o in 0..<outDim {
                #expect(abs(Double(out[t * outDim + o]) - (Double(base[t * outDim + o]) + side[o])) < 1e-4, "row \(t) output \(o)")
            }
        }
    }

    @Test func aRowsResultDoesNotDependOnTheOtherRows() {
        // Given 32 rows, each with its own rank-16 adapter, at the model's dims
        var rng = TestRandom(seed: 9)
        let inDim = 576, outDim = 192, T = 32, rank = 16
        let adapters = (0..<T).map { _ in HalfLoRA(rank: rank, inDim: inDim, outDim: outDim, rng: &rng) }
        let x = rng.floats(T * inDim)
        func run(_ rowsToRun: [Int]) -> [Float] {
            var out = [Float](repeating: 0, count: T * outDim)
            var shrink = [Float](repeating: 0, count: T * rank)
            adapters.map(\.packedA).withPointers { aPointers in
                adapters.map(\.packedBT).withPointers { bPointers in
                    let rows = rowsToRun.map { LoRARow(row: $0, a: aPointers[$0], bT: bPointers[$0], rank: rank, scale: 0.75) }
                    loraRowsForward(out: &out, outStride: outDim, x: x, xStride: inDim, rows: rows, count: rows.count,
                                    inDim: inDim, outDim: outDim, shrink: &shrink, shrinkStride: rank)
                }
            }
            return out
        }
        // When all rows run together, and each row runs alone
        let together = run(Array(0..<T))
        for t in [0, 13, 31] {
            let alone = run([t])
            // Then its outputs are bit-identical
            #expect(Array(alone[(t * outDim)..<((t + 1) * outDim)]) == Array(together[(t * outDim)..<((t + 1) * outDim)]))
        }
    }

    @Test(arguments: [(77, 75, 5), (576, 1536, 16), (1536, 576, 13)])
    func rowsSharingAnAdapterMatchEachAlone(inDim: Int, outDim: Int, rank: Int) {
        // Given 7 rows: five share one adapter (neighbours, so they go in pairs with one
        // left over), then two of another
        var rng = TestRandom(seed: UInt64(inDim + rank))
        let T = 7, stride = LoRAPacking.paddedRank(rank)
        let adapters = (0..<2).map { _ in HalfLoRA(rank: rank, inDim: inDim, outDim: outDim, rng: &rng) }
        let assignment = [0, 0, 0, 0, 0, 1, 1]
        let x = rng.floats(T * inDim), base = rng.floats(T * outDim)
        func run(_ rowsToRun: [Int]) -> [Float] {
            var out = base
            var shrink = [Float](repeating: .nan, count: T * stride)
            adapters.map(\.packedA).withPointers { aPointers in
                adapters.map(\.packedBT).withPointers { bPointers in
                    let rows = rowsToRun.map { t in
                        LoRARow(row: t, a: aPointers[assignment[t]], bT: bPointers[assignment[t]], rank: rank, scale: 0.5)
                    }
                    loraRowsForward(out: &out, outStride: outDim, x: x, xStride: inDim, rows: rows, count: rows.count,
                                    inDim: inDim, outDim: outDim, shrink: &shrink, shrinkStride: stride)
                }
            }
            return out
        }
        // When they run together, and each runs alone
        let together = run(Array(0..<T))
        for t in 0..<T {
            let alone = run([t])
            let rowRange = (t * outDim)..<((t + 1) * outDim)
            // Then each row is bit-identical either way, and matches the naive side path
            #expect(Array(alone[rowRange]) == Array(together[rowRange]), "row \(t)")
            let side = adapters[assignment[t]].reference(x: x[(t * inDim)..<((t + 1) * inDim)], scale: 0.5)
            for o in 0..<outDim {
                #expect(abs(Double(together[t * outDim + o]) - (Double(base[t * outDim + o]) + side[o])) < 1e-3,
                        "row \(t) output \(o)")
            }
        }
    }

    @Test(arguments: [(1, 3), (4, 8), (5, 13), (16, 40)])
    func packingRoundTripsAndPadsWithZeros(rank: Int, cols: Int) {
        // Given a (rank, cols) matrix of distinct halves
        let m = (0..<(rank * cols)).map { Float16(Float($0 + 1)) }
        // When it is packed as A and as Bᵀ, then unpacked
        let a = pack(LoRAPacking.count(rank: rank, cols: cols)) { LoRAPacking.packA($0, m, rank: rank, inDim: cols) }
        let bT = pack(LoRAPacking.count(rank: rank, cols: cols)) { LoRAPacking.packBT($0, m, rank: rank, outDim: cols) }
        var fromA = [Float](repeating: 0, count: m.count), fromBT = [Float](repeating: 0, count: m.count)
        LoRAPacking.unpackA(&fromA, a, rank: rank, inDim: cols)
        LoRAPacking.unpackBT(&fromBT, bT, rank: rank, outDim: cols)
        // Then both give the matrix back, and every other packed element is zero
        #expect(fromA == m.map { Float($0) } && fromBT == m.map { Float($0) })
        #expect(a.count == (rank + 3) / 4 * 4 * ((cols + 7) / 8 * 8))
        #expect(a.filter { $0 != 0 }.count == m.count && bT.filter { $0 != 0 }.count == m.count)
        #expect(a.allSatisfy { !$0.isNaN } && bT.allSatisfy { !$0.isNaN })
    }

    @Test(arguments: [(1, 3), (4, 8), (5, 13), (16, 40)])
    func int8PackingRoundTripsAndPadsWithZeros(rank: Int, cols: Int) {
        // Given a (rank, cols) matrix of nonzero bytes
        let m: [Int8] = (0..<(rank * cols)).map { i in
            let magnitude = Int8(i % 127 + 1)
            return i.isMultiple(of: 2) ? magnitude : -magnitude
        }
        // When it is packed as int8 A and Bᵀ (over bytes that are not zero), then unpacked
        var a = [Int8](repeating: 99, count: LoRAPacking.count(rank: rank, cols: cols)), bT = a
        a.withUnsafeMutableBufferPointer { LoRAPacking.packA($0.baseAddress!, m, rank: rank, inDim: cols) }
        bT.withUnsafeMutableBufferPointer { LoRAPacking.packBT($0.baseAddress!, m, rank: rank, outDim: cols) }
        var fromA = [Float](repeating: 0, count: m.count), fromBT = [Float](repeating: 0, count: m.count)
        LoRAPacking.unpackA(&fromA, a, precision: .int8, rank: rank, inDim: cols)
        LoRAPacking.unpackBT(&fromBT, bT, precision: .int8, rank: rank, outDim: cols)
        // Then both give the matrix back, and every other packed byte is zero
        let expected: [Float] = m.map { Float($0) }
        #expect(fromA == expected && fromBT == expected)
        #expect(a.filter { $0 != 0 }.count == m.count && bT.filter { $0 != 0 }.count == m.count)
    }
}

extension Array {
    /// Base pointers of each element array, valid inside `body`.
    fileprivate func withPointers<R, E>(_ body: ([UnsafePointer<E>]) -> R) -> R where Element == [E] {
        var pointers: [UnsafePointer<E>] = []
        func nest(_ i: Int) -> R {
            if i == count { return body(pointers) }
            return self[i].withUnsafeBufferPointer { buffer in
                pointers.append(buffer.baseAddress!)
                return nest(i + 1)
            }
        }
        return nest(0)
    }
}

/// One adapter's weights held as int8 for a test: A (rank×in) and Bᵀ (rank×out) as
/// bytes with a scale per rank, packed for the kernels.
private struct Int8LoRA {
    let rank: Int, inDim: Int, outDim: Int
    let a: [Int8], bT: [Int8]
    let rankScales: [Float]
    let packedA: [Int8], packedBT: [Int8]

    init(rank: Int, inDim: Int, outDim: Int, rng: inout TestRandom) {
        (self.rank, self.inDim, self.outDim) = (rank, inDim, outDim)
        let a = (0..<(rank * inDim)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
        let bT = (0..<(rank * outDim)).map { _ in Int8(truncatingIfNeeded: Int(rng.next() % 255) - 127) }
        (self.a, self.bT) = (a, bT)
        rankScales = rng.floats(rank).map { $0 / 1000 }
        var packedA = [Int8](repeating: 99, count: LoRAPacking.count(rank: rank, cols: inDim))
        var packedBT = [Int8](repeating: 99, count: LoRAPacking.count(rank: rank, cols: outDim))
        packedA.withUnsafeMutableBufferPointer { LoRAPacking.packA($0.baseAddress!, a, rank: rank, inDim: inDim) }
        packedBT.withUnsafeMutableBufferPointer { LoRAPacking.packBT($0.baseAddress!, bT, rank: rank, outDim: outDim) }
        (self.packedA, self.packedBT) = (packedA, packedBT)
    }

    /// scale · Σ_r rankScales[r] · (A x)[r] · Bᵀ[r] for one row, naively in Double.
    func reference(x: ArraySlice<Float>, scale: Float) -> [Double] {
        let ax = rankValues(x: x, scale: scale)
        return (0..<outDim).map { o in (0..<rank).reduce(0.0) { $0 + ax[$1] * Double(bT[$1 * outDim + o]) } }
    }

    /// scale · rankScales[r] · (A x)[r], in Double.
    private func rankValues(x: ArraySlice<Float>, scale: Float) -> [Double] {
        let x = Array(x)
        return (0..<rank).map { r in
            Double(scale) * Double(rankScales[r]) * (0..<inDim).reduce(0.0) { $0 + Double(a[r * inDim + $1]) * Double(x[$1]) }
        }
    }

    /// Per output, how far the decode kernel's result may lie from `reference`: x
    /// rounded to steps of max|x| / xRange moves each rank value by at most half a step
    /// times Σ|A[r]| (times its scales), and the rank values rounded to steps of their
    /// largest / sRange move by half a step more; every integer sum after is exact.
    func decodeRoundingBound(x: ArraySlice<Float>, scale: Float) -> [Double] {
        let xStep = Double(x.map(abs).max()!) / Double(graft_lora_int8_x_range(inDim))
        let values = rankValues(x: x, scale: scale)
        let valueErrors = (0..<rank).map { r in
            abs(Double(scale) * Double(rankScales[r])) * xStep / 2 * (0..<inDim).reduce(0.0) { $0 + Double(abs(a[r * inDim + $1])) }
        }
        let largest = zip(values, valueErrors).map { abs($0) + $1 }.max()!
        let valueStep = largest / Double(graft_lora_int8_s_range(rank))
        return (0..<outDim).map { o in
            (0..<rank).reduce(0.0) { $0 + Double(abs(bT[$1 * outDim + o])) * (valueErrors[$1] + valueStep / 2) }
        }
    }
}

extension LoRATests {
    /// Rows 0-2 share adapter 0, rows 3 and 6 take adapter 1 (another scale), row 5
    /// adapter 2 (one rank more), row 4 none: the decode rows run as pairs of one
    /// adapter, pairs of two adapters and rows alone. Dims exercising the wide, 8-wide and
    /// scalar parts of both loops, and ranks giving the decode kernel one to five groups
    /// of four ranks.
    @Test(arguments: [(77, 75, 5), (576, 1536, 16), (1536, 576, 9), (40, 200, 17), (8, 8, 1)])
    func int8WeightsTakeTheirRankScalesOnBothPaths(inDim: Int, outDim: Int, rank: Int) {
        // Given three int8 adapters with a scale per rank, and 8 rows
        var rng = TestRandom(seed: UInt64(3 * inDim + rank))
        let T = 8, stride = LoRAPacking.paddedRank(rank + 1)
        let ranks = [rank, rank, rank + 1], scales: [Float] = [0.75, 1.25, 0.5]
        let adapters = ranks.map { Int8LoRA(rank: $0, inDim: inDim, outDim: outDim, rng: &rng) }
        let assignment: [Int?] = [0, 0, 0, 1, nil, 2, 1, 0]
        let x = rng.floats(T * inDim), base = rng.floats(T * outDim)
        var decoded = base, prompt = base, alone = base
        var shrink = [Float](repeating: 0, count: T * stride)
        var scratch = [Float](repeating: 0, count: loraGemmScratchCount(rows: 3, rank: rank, inDim: inDim, outDim: outDim))
        adapters.map(\.packedA).withPointers { aPointers in
            adapters.map(\.packedBT).withPointers { bPointers in
                adapters.map(\.rankScales).withPointers { scalePointers in
                    // When the rows run as decode rows
                    let rows = assignment.enumerated().compactMap { t, k in
                        k.map { LoRARow(row: t, a: aPointers[$0], bT: bPointers[$0], precision: .int8, rank: ranks[$0],
                                        scale: scales[$0], rankScales: scalePointers[$0]) }
                    }
                    loraRowsForward(out: &decoded, outStride: outDim, x: x, xStride: inDim, rows: rows, count: rows.count,
                                    inDim: inDim, outDim: outDim, shrink: &shrink, shrinkStride: stride)
                    // And each of them alone
                    for row in rows {
                        loraRowsForward(out: &alone, outStride: outDim, x: x, xStride: inDim, rows: [row], count: 1,
                                        inDim: inDim, outDim: outDim, shrink: &shrink, shrinkStride: stride)
                    }
                    // And adapter 0's first rows as one prompt chunk
                    loraGemmForward(out: &prompt, outStride: outDim, x: x, xStride: inDim, T: 3, a: aPointers[0],
                                    bT: bPointers[0], precision: .int8, rank: rank, inDim: inDim, outDim: outDim,
                                    scale: scales[0], rankScales: scalePointers[0], scratch: &scratch, shrink: &shrink)
                }
            }
        }
        // Then a row's result is bit-identical in a pair (of either kind) and alone
        #expect(decoded == alone)
        // And each row is base + its side path with every rank's scale: within f32
        // rounding on the prompt path, and within the bound of its int16 rounding on the
        // decode path
        for t in 0..<T {
            let rowX = x[(t * inDim)..<((t + 1) * inDim)]
            let side = assignment[t].map { adapters[$0].reference(x: rowX, scale: scales[$0]) }
                ?? [Double](repeating: 0, count: outDim)
            let bound = assignment[t].map { adapters[$0].decodeRoundingBound(x: rowX, scale: scales[$0]) }
                ?? [Double](repeating: 0, count: outDim)
            let magnitude = side.map(abs).max()! + 1
            for o in 0..<outDim {
                let expected = Double(base[t * outDim + o]) + side[o]
                #expect(abs(Double(decoded[t * outDim + o]) - expected) <= bound[o] + 1e-6 * magnitude,
                        "decode row \(t) output \(o)")
                if t < 3 {
                    #expect(abs(Double(prompt[t * outDim + o]) - expected) < 1e-5 * magnitude, "prompt row \(t) output \(o)")
                }
            }
        }
    }
}
