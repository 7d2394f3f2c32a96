import Testing
import Kernels

@Suite struct InterleavedWeightsTests {
    static let types: [GGMLType] = [.q4_1, .q8_0]

    /// A random matrix (row-major bytes) and its interleaved copy.
    struct Matrices {
        let rowMajorBytes: [UInt8]
        var interleavedBytes: [UInt8]
        let type: GGMLType
        let rows: Int, cols: Int

        init(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) {
            var rng = TestRandom(seed: seed)
            self.init(type, rowMajorBytes: encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type),
                      rows: rows, cols: cols)
        }

        init(_ type: GGMLType, rowMajorBytes: [UInt8], rows: Int, cols: Int) {
            (self.type, self.rows, self.cols, self.rowMajorBytes) = (type, rows, cols, rowMajorBytes)
            interleavedBytes = [UInt8](repeating: 0, count: rowMajorBytes.count)
            rowMajorBytes.withUnsafeBytes { src in
                interleavedBytes.withUnsafeMutableBytes { dst in
                    _ = WeightMatrix(type: type, data: src.baseAddress!, rows: rows, cols: cols)
                        .interleaved(into: dst.baseAddress!)
                }
            }
        }

        /// T random activation rows of this matrix's width.
        func activations(rows T: Int, seed: UInt64) -> [Float] {
            var rng = TestRandom(seed: seed)
            return rng.floats(T * cols)
        }

        func withBoth<R>(_ body: (WeightMatrix, WeightMatrix) -> R) -> R {
            rowMajorBytes.withUnsafeBytes { a in
                interleavedBytes.withUnsafeBytes { b in
                    body(WeightMatrix(type: type, data: a.baseAddress!, rows: rows, cols: cols),
                         WeightMatrix(type: type, data: b.baseAddress!, rows: rows, cols: cols, interleaved: true))
                }
            }
        }
    }

    /// out (T × w.rows) of MatMul.forward.
    func product(_ w: WeightMatrix, _ x: [Float], T: Int, path: MatMul.Path? = nil) -> [Float] {
        var out = [Float](repeating: .nan, count: T * w.rows)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: w.cols))
        MatMul.forward(out: &out, outStride: w.rows, x: x, xStride: w.cols, T: T, weight: w, scratch: &scratch, path: path)
        return out
    }

    @Test(arguments: types, [1, 2, 3, 4, 5, 8, 13, 16, 41])
    func productMatchesTheRowMajorOneWithinRounding(type: GGMLType, T: Int) {
        // Given a matrix of nine blocks of eight rows in both layouts
        let m = Matrices(type, rows: 72, cols: 160, seed: 3 + UInt64(T))
        let x = m.activations(rows: T, seed: 90 + UInt64(T))
        m.withBoth { rowMajor, interleaved in
            // When each multiplies the same rows on the decode path
            let expected = product(rowMajor, x, T: T, path: .rowwise(.f32))
            let got = product(interleaved, x, T: T, path: .rowwise(.f32))
            // Then they agree to f32 rounding (the orders differ: per group, not per weight)
            #expect(maxAbsDifference(got, expected) < 1e-4)
        }
    }

    /// 15 rows: the kernels broadcasting one, two, three and four rows all run. 43: five
    /// slabs of eight rows in lanes (register blocks of two slabs and of one), then three
    /// broadcast. 75: nine slabs, more than one call's accumulators hold.
    @Test(arguments: types, [15, 43, 75])
    func aRowsResultIsTheSameAloneOrInAnyBatch(type: GGMLType, T: Int) {
        // Given T activation rows
        let m = Matrices(type, rows: 72, cols: 96, seed: 17 + UInt64(T))
        let x = m.activations(rows: T, seed: 18 + UInt64(T))
        m.withBoth { _, interleaved in
            // When all rows run in one call, and each alone
            let together = product(interleaved, x, T: T, path: .rowwise(.f32))
            var alone: [Float] = []
            for t in 0..<T { alone += product(interleaved, Array(x[(t * m.cols)..<((t + 1) * m.cols)]), T: 1, path: .rowwise(.f32)) }
            // Then every output is bit-identical
            #expect(together == alone)
            // And asking for int16 activations changes nothing: interleaved weights have only the exact kernels
            #expect(product(interleaved, x, T: T, path: .rowwise(.int16)) == together)
            // And with int8 activations, which round (so differ from f32), each row is its own too
            var int8Alone: [Float] = []
            for t in 0..<T {
                int8Alone += product(interleaved, Array(x[(t * m.cols)..<((t + 1) * m.cols)]), T: 1, path: .rowwise(.int8))
            }
            #expect(product(interleaved, x, T: T, path: .rowwise(.int8)) == int8Alone)
            #expect(int8Alone != together)
        }
    }

    /// int8 activations: every tile size (1...8) and several tiles.
    @Test(arguments: types, [1, 2, 3, 5, 7, 8, 9, 13, 32])
    func int8ActivationsStayWithinTheirRoundingBound(type: GGMLType, T: Int) {
        // Given an interleaved matrix and activation rows of mixed magnitudes
        let m = Matrices(type, rows: 72, cols: 160, seed: 600 + UInt64(T))
        let x = m.activations(rows: T, seed: 700 + UInt64(T)).enumerated().map { i, v in v * (i % 7 == 0 ? 40 : 1) }
        m.withBoth { rowMajor, interleaved in
            // When multiplied with activations rounded to int8 per group of 32
            let got = product(interleaved, x, T: T, path: .rowwise(.int8))
            let exact = product(rowMajor, x, T: T, path: .rowwise(.f32))
            var w = [Float](repeating: 0, count: m.rows * m.cols)
            MatMul.dequantizeRows(rowMajor, rows: 0..<m.rows, out: &w)
            // Then each output is within the rounding bound of the exact product: an
            // activation moves by at most half a step (its group's max / 127 / 2), so an
            // output by at most Σ|w|·step/2; plus f32 summation noise
            for t in 0..<T {
                for r in 0..<m.rows {
                    var bound = 0.0, magnitude = 0.0
                    for g in 0..<(m.cols / 32) {
                        let xs = (0..<32).map { Double(x[t * m.cols + g * 32 + $0]) }
                        let step = xs.map(abs).max()! / 127
                        for c in 0..<32 {
                            bound += abs(Double(w[r * m.cols + g * 32 + c])) * step / 2
                            magnitude += abs(Double(w[r * m.cols + g * 32 + c]) * xs[c])
                        }
                    }
                    let difference = abs(Double(got[t * m.rows + r]) - Double(exact[t * m.rows + r]))
                    #expect(difference <= bound * 1.001 + magnitude * 1e-6, "row \(t), output \(r)")
                }
            }
            // And the rounding is real: int8 is not the exact product
            #expect(got != exact)
        }
    }

    /// The integer sums at their extremes: every weight byte pattern (Q8_0's -128, Q4_1's
    /// nibble 15) against activations ±127 and every value between, where int8 rounding
    /// is exact, so any overflow or saturation in the kernel would show.
    @Test(arguments: types, [3, 8, 16])
    func int8ProductsAreExactWhenTheActivationsAreIntegers(type: GGMLType, T: Int) {
        // Given raw random quantized values with small power-of-two scales (exact in f16)
        let rows = 24, cols = 256, groupBytes = type == .q4_1 ? 20 : 34
        var rng = TestRandom(seed: 41 + UInt64(T))
        var bytes = (0..<(rows * cols / 32 * groupBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for g in 0..<(rows * cols / 32) {
            let scale: UInt16 = 0x3400 + UInt16(g % 3) * 0x400  // 0.25, 0.5, 1
            bytes[g * groupBytes] = UInt8(scale & 0xFF)
            bytes[g * groupBytes + 1] = UInt8(scale >> 8)
            if type == .q4_1 { (bytes[g * groupBytes + 2], bytes[g * groupBytes + 3]) = (0x00, 0xBC) }  // offset -1
        }
        // And integer activations in -127...127, each group reaching ±127 (scale 1: nothing rounds)
        var x = (0..<(T * cols)).map { _ in Float(Int(rng.next() % 255) - 127) }
        for i in stride(from: 0, to: x.count, by: 32) { x[i + Int(rng.next() % 32)] = rng.next() % 2 == 0 ? 127 : -127 }
        let m = Matrices(type, rowMajorBytes: bytes, rows: rows, cols: cols)
        m.withBoth { rowMajor, interleaved in
            // When multiplied with int8 activations
            let got = product(interleaved, x, T: T, path: .rowwise(.int8))
            var w = [Float](repeating: 0, count: rows * cols)
            MatMul.dequantizeRows(rowMajor, rows: 0..<rows, out: &w)
            // Then each output is the exact product, to f32 rounding of its partial sums
            for t in 0..<T {
                for r in 0..<rows {
                    var exact = 0.0, magnitude = 0.0
                    for c in 0..<cols {
                        exact += Double(w[r * cols + c]) * Double(x[t * cols + c])
                        magnitude += abs(Double(w[r * cols + c]) * Double(x[t * cols + c]))
                    }
                    #expect(abs(Double(got[t * rows + r]) - exact) <= magnitude * 1e-6, "row \(t), output \(r)")
                }
            }
        }
    }

    /// Every tile size and several tiles, on random data and on the integer extremes of
    /// the test above (where a saturating or overflowing sum would differ).
    @Test(.enabled(if: MatMul.cpuHasInt8VNNI, "the CPU has no VNNI"), arguments: types)
    func int8KernelsWithAndWithoutVNNIAreBitIdentical(type: GGMLType) {
        defer { MatMul.int8UsesVNNI = true }
        for T in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 32] {
            // Given random weights and activations of mixed magnitudes, and integer extremes
            let m = Matrices(type, rows: 40, cols: 192, seed: 900 + UInt64(T))
            var rng = TestRandom(seed: 950 + UInt64(T))
            let extremes = (0..<(T * m.cols)).map { i in Float(i % 3 == 0 ? 127 : Int(rng.next() % 255) - 127) }
            let mixed = m.activations(rows: T, seed: 901 + UInt64(T)).enumerated().map { i, v in v * (i % 5 == 0 ? 30 : 1) }
            m.withBoth { _, interleaved in
                for x in [mixed, extremes] {
                    // When multiplied by the AVX2 kernels and by the VNNI ones
                    MatMul.int8UsesVNNI = false
                    let plain = product(interleaved, x, T: T, path: .rowwise(.int8))
                    MatMul.int8UsesVNNI = true
                    #expect(MatMul.int8UsesVNNI)
                    let vnni = product(interleaved, x, T: T, path: .rowwise(.int8))
                    // Then every output is the same float
                    #expect(vnni == plain, "\(T) rows")
                }
            }
        }
    }

    @Test(arguments: types)
    func dequantizedRowsAndThePromptPathEqualTheRowMajorOnes(type: GGMLType) {
        // Given a matrix in both layouts
        let m = Matrices(type, rows: 48, cols: 64, seed: 29)
        m.withBoth { rowMajor, interleaved in
            // When rows 3..<21 are dequantized from each
            var a = [Float](repeating: .nan, count: 18 * m.cols), b = a
            MatMul.dequantizeRows(rowMajor, rows: 3..<21, out: &a)
            MatMul.dequantizeRows(interleaved, rows: 3..<21, out: &b)
            // Then they are bit-identical, and so are the prompt path's products
            #expect(a == b)
            let x = m.activations(rows: 20, seed: 30)
            #expect(product(rowMajor, x, T: 20, path: .gemm) == product(interleaved, x, T: 20, path: .gemm))
        }
    }

    @Test(arguments: types)
    func prefetchingOtherMemoryChangesNoResult(type: GGMLType) {
        // Given 6 activation rows and three spans of unrelated memory to prefetch
        let T = 6
        let m = Matrices(type, rows: 128, cols: 96, seed: 41)
        let x = m.activations(rows: T, seed: 42)
        let other = [UInt8](repeating: 1, count: 3 * 5000)
        m.withBoth { _, interleaved in
            let plain = product(interleaved, x, T: T, path: .rowwise(.f32))
            var prefetching = [Float](repeating: .nan, count: T * m.rows)
            var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: m.cols))
            other.withUnsafeBytes { ob in
                let spans = (0..<3).map { PrefetchSpan(start: ob.baseAddress! + $0 * 5000, byteCount: 5000) }
                spans.withUnsafeBufferPointer { spans in
                    MatMul.forward(out: &prefetching, outStride: m.rows, x: x, xStride: m.cols, T: T, weight: interleaved,
                                   scratch: &scratch, path: .rowwise(.f32), prefetch: spans)
                }
            }
            #expect(plain == prefetching)
        }
    }
}
