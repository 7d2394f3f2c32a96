import Testing
import Kernels

@Suite struct InterleavedQ4_1Tests {
    /// A random Q4_1 matrix (row-major bytes) and its interleaved copy.
    struct Matrices {
        let rowMajorBytes: [UInt8]
        var interleavedBytes: [UInt8]
        let rows: Int, cols: Int

        init(rows: Int, cols: Int, seed: UInt64) {
            var rng = TestRandom(seed: seed)
            (self.rows, self.cols) = (rows, cols)
            rowMajorBytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: .q4_1)
            interleavedBytes = [UInt8](repeating: 0, count: rowMajorBytes.count)
            rowMajorBytes.withUnsafeBytes { src in
                interleavedBytes.withUnsafeMutableBytes { dst in
                    _ = WeightMatrix(type: .q4_1, data: src.baseAddress!, rows: rows, cols: cols)
                        .interleaved(into: dst.baseAddress!)
                }
            }
        }

        func withBoth<R>(_ body: (WeightMatrix, WeightMatrix) -> R) -> R {
            rowMajorBytes.withUnsafeBytes { a in
                interleavedBytes.withUnsafeBytes { b in
                    body(WeightMatrix(type: .q4_1, data: a.baseAddress!, rows: rows, cols: cols),
                         WeightMatrix(type: .q4_1, data: b.baseAddress!, rows: rows, cols: cols, interleaved: true))
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

    @Test(arguments: [1, 2, 3, 4, 5, 8, 13])
    func productMatchesTheRowMajorOneWithinRounding(T: Int) {
        // Given a Q4_1 matrix of nine blocks of eight rows in both layouts
        let m = Matrices(rows: 72, cols: 160, seed: 3 + UInt64(T))
        var rng = TestRandom(seed: 90 + UInt64(T))
        let x = rng.floats(T * m.cols)
        m.withBoth { rowMajor, interleaved in
            // When each multiplies the same rows on the decode path
            let expected = product(rowMajor, x, T: T, path: .rowwise(.f32))
            let got = product(interleaved, x, T: T, path: .rowwise(.f32))
            // Then they agree to f32 rounding (the orders differ: per group, not per weight)
            #expect(maxAbsDifference(got, expected) < 1e-4)
        }
    }

    @Test func aRowsResultIsTheSameAloneOrInAnyBatch() {
        // Given 15 activation rows (the kernels for one, two, three and four rows all run)
        let m = Matrices(rows: 72, cols: 96, seed: 17)
        var rng = TestRandom(seed: 18)
        let T = 15
        let x = rng.floats(T * m.cols)
        m.withBoth { _, interleaved in
            // When all rows run in one call, and each alone
            let together = product(interleaved, x, T: T, path: .rowwise(.f32))
            var alone: [Float] = []
            for t in 0..<T { alone += product(interleaved, Array(x[(t * m.cols)..<((t + 1) * m.cols)]), T: 1, path: .rowwise(.f32)) }
            // Then every output is bit-identical
            #expect(together == alone)
            // And asking for int16 activations changes nothing: interleaved Q4_1 has only the exact kernels
            #expect(product(interleaved, x, T: T, path: .rowwise(.int16)) == together)
        }
    }

    @Test func dequantizedRowsAndThePromptPathEqualTheRowMajorOnes() {
        // Given a matrix in both layouts
        let m = Matrices(rows: 48, cols: 64, seed: 29)
        var rng = TestRandom(seed: 30)
        m.withBoth { rowMajor, interleaved in
            // When rows 3..<21 are dequantized from each
            var a = [Float](repeating: .nan, count: 18 * m.cols), b = a
            MatMul.dequantizeRows(rowMajor, rows: 3..<21, out: &a)
            MatMul.dequantizeRows(interleaved, rows: 3..<21, out: &b)
            // Then they are bit-identical, and so are the prompt path's products
            #expect(a == b)
            let x = rng.floats(20 * m.cols)
            #expect(product(rowMajor, x, T: 20, path: .gemm) == product(interleaved, x, T: 20, path: .gemm))
        }
    }

    @Test func prefetchingOtherMemoryChangesNoResult() {
        // Given 6 activation rows and three spans of unrelated memory to prefetch
        let m = Matrices(rows: 128, cols: 96, seed: 41)
        var rng = TestRandom(seed: 42)
        let T = 6
        let x = rng.floats(T * m.cols)
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
