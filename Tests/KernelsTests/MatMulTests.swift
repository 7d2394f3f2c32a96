import Testing
import Kernels

@Suite struct MatMulTests {
    static let types: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0]

    /// out[t, r] = Σ_c x[t, c] · W[r, c], in Double, on the reference-dequantized W.
    func matmulReference(x: [Float], w: [Float], T: Int, rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: T * rows)
        for t in 0..<T {
            for r in 0..<rows {
                var acc = 0.0
                for c in 0..<cols { acc += Double(x[t * cols + c]) * Double(w[r * cols + c]) }
                out[t * rows + r] = Float(acc)
            }
        }
        return out
    }

    @Test(arguments: types, [1, 3, 4, 7, 13, 16, 37])
    func forwardMatchesNaiveReference(type: GGMLType, T: Int) {
        // Given a random matrix stored in `type` and T random activation rows
        var rng = TestRandom(seed: UInt64(type.rawValue) * 100 + UInt64(T))
        let rows = 300, cols = 160
        let bytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type)
        let reference = decodeMatrixReference(bytes, rows: rows, cols: cols, type: type)
        let x = rng.floats(T * cols)
        // When multiplied by the kernel (T >= 16 takes the dequantize + sgemm path)
        var out = [Float](repeating: .nan, count: T * rows)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(cols: cols))
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            MatMul.forward(out: &out, outStride: rows, x: x, xStride: cols, T: T, weight: w, scratch: &scratch)
        }
        // Then it equals the naive product on the reference-dequantized weights
        let expected = matmulReference(x: x, w: reference, T: T, rows: rows, cols: cols)
        #expect(maxAbsDifference(out, expected) < 1e-4)
    }

    @Test(arguments: types)
    func rowwisePathIsBatchInvariant(type: GGMLType) {
        // Given 15 activation rows (kernels for eight, four and single rows all run)
        var rng = TestRandom(seed: 99 + UInt64(type.rawValue))
        let rows = 70, cols = 96, T = 15
        let bytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type)
        let x = rng.floats(T * cols)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(cols: cols))
        var together = [Float](repeating: .nan, count: T * rows)
        var alone = [Float](repeating: .nan, count: T * rows)
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            // When all rows run in one call, and each row in a call of its own
            MatMul.forward(out: &together, outStride: rows, x: x, xStride: cols, T: T, weight: w,
                           scratch: &scratch, path: .rowwise)
            for t in 0..<T {
                alone.withUnsafeMutableBufferPointer { o in
                    x.withUnsafeBufferPointer { xp in
                        MatMul.forward(out: o.baseAddress! + t * rows, outStride: rows, x: xp.baseAddress! + t * cols,
                                       xStride: cols, T: 1, weight: w, scratch: &scratch, path: .rowwise)
                    }
                }
            }
        }
        // Then the results are bit-identical
        #expect(together == alone)
    }

    @Test(arguments: types)
    func dequantizeRowsMatchesScalarReference(type: GGMLType) {
        // Given a stored random matrix
        var rng = TestRandom(seed: 7 + UInt64(type.rawValue))
        let rows = 9, cols = 96
        let bytes = encodeMatrix(rng.floats(rows * cols, scale: 3), rows: rows, cols: cols, type: type)
        // When the SIMD decoders dequantize rows 2..<7
        var out = [Float](repeating: .nan, count: 5 * cols)
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            MatMul.dequantizeRows(w, rows: 2..<7, out: &out)
        }
        // Then they equal the scalar reference exactly
        let reference = decodeMatrixReference(bytes, rows: rows, cols: cols, type: type)
        #expect(out == Array(reference[(2 * cols)..<(7 * cols)]))
    }
}
