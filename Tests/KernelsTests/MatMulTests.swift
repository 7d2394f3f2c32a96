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
        // When multiplied by the kernel (T >= 16 takes the dequantize + gemm path)
        var out = [Float](repeating: .nan, count: T * rows)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: cols))
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            MatMul.forward(out: &out, outStride: rows, x: x, xStride: cols, T: T, weight: w, scratch: &scratch)
        }
        // Then it equals the naive product on the reference-dequantized weights
        let expected = matmulReference(x: x, w: reference, T: T, rows: rows, cols: cols)
        #expect(maxAbsDifference(out, expected) < 1e-4)
    }

    @Test(arguments: types, MatMul.ActivationPrecision.allCases)
    func rowwisePathIsBatchInvariant(type: GGMLType, precision: MatMul.ActivationPrecision) {
        // Given 15 activation rows (kernels for eight, four and single rows all run)
        var rng = TestRandom(seed: 99 + UInt64(type.rawValue))
        let rows = 70, cols = 96, T = 15
        let bytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type)
        let x = rng.floats(T * cols)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: cols))
        var together = [Float](repeating: .nan, count: T * rows)
        var alone = [Float](repeating: .nan, count: T * rows)
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            // When all rows run in one call, and each row in a call of its own
            MatMul.forward(out: &together, outStride: rows, x: x, xStride: cols, T: T, weight: w,
                           scratch: &scratch, path: .rowwise(precision))
            for t in 0..<T {
                alone.withUnsafeMutableBufferPointer { o in
                    x.withUnsafeBufferPointer { xp in
                        MatMul.forward(out: o.baseAddress! + t * rows, outStride: rows, x: xp.baseAddress! + t * cols,
                                       xStride: cols, T: 1, weight: w, scratch: &scratch, path: .rowwise(precision))
                    }
                }
            }
        }
        // Then the results are bit-identical
        #expect(together == alone)
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .f16], MatMul.ActivationPrecision.allCases)
    func prefetchingOtherMemoryChangesNoResult(type: GGMLType, precision: MatMul.ActivationPrecision) {
        // Given 13 activation rows and three spans of unrelated memory to prefetch (they
        // split each thread's rows into parts)
        var rng = TestRandom(seed: 41 + UInt64(type.rawValue))
        let rows = 150, cols = 96, T = 13
        let bytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type)
        let x = rng.floats(T * cols)
        let other = [UInt8](repeating: 1, count: 3 * 5000)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: cols))
        var plain = [Float](repeating: .nan, count: T * rows)
        var prefetching = [Float](repeating: .nan, count: T * rows)
        bytes.withUnsafeBytes { wb in
            other.withUnsafeBytes { ob in
                let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
                let spans = (0..<3).map { PrefetchSpan(start: ob.baseAddress! + $0 * 5000, byteCount: 5000) }
                // When multiplied without and with the spans to prefetch
                MatMul.forward(out: &plain, outStride: rows, x: x, xStride: cols, T: T, weight: w,
                               scratch: &scratch, path: .rowwise(precision))
                spans.withUnsafeBufferPointer { spans in
                    MatMul.forward(out: &prefetching, outStride: rows, x: x, xStride: cols, T: T, weight: w,
                                   scratch: &scratch, path: .rowwise(precision), prefetch: spans)
                }
            }
        }
        // Then the results are bit-identical
        #expect(plain == prefetching)
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0], [1, 3, 4, 8, 13])
    func int16ActivationsStayWithinTheirRoundingBound(type: GGMLType, T: Int) {
        // Given a random quantized matrix and activation rows of mixed magnitudes
        var rng = TestRandom(seed: 500 + UInt64(type.rawValue) * 10 + UInt64(T))
        let rows = 70, cols = 160
        let bytes = encodeMatrix(rng.floats(rows * cols), rows: rows, cols: cols, type: type)
        let reference = decodeMatrixReference(bytes, rows: rows, cols: cols, type: type)
        let x = rng.floats(T * cols).enumerated().map { i, v in v * (i % 7 == 0 ? 40 : 1) }
        // When multiplied with activations rounded to int16 per group of 32
        var out = [Float](repeating: .nan, count: T * rows)
        var scratch = [Float](repeating: 0, count: MatMul.scratchCount(rows: T, cols: cols))
        bytes.withUnsafeBytes { wb in
            let w = WeightMatrix(type: type, data: wb.baseAddress!, rows: rows, cols: cols)
            MatMul.forward(out: &out, outStride: rows, x: x, xStride: cols, T: T, weight: w,
                           scratch: &scratch, path: .rowwise(.int16))
        }
        // Then each output is within the rounding bound of the exact product: every
        // activation moves by at most half a step (its group's max / 32767 / 2), so an
        // output moves by at most Σ|w|·step/2; plus f32 summation noise.
        let expected = matmulReference(x: x, w: reference, T: T, rows: rows, cols: cols)
        for t in 0..<T {
            for r in 0..<rows {
                var bound = 0.0, magnitude = 0.0
                for g in 0..<(cols / 32) {
                    let xs = (0..<32).map { Double(x[t * cols + g * 32 + $0]) }
                    let step = xs.map(abs).max()! / 32767
                    for c in 0..<32 {
                        bound += abs(Double(reference[r * cols + g * 32 + c])) * step / 2
                        magnitude += abs(Double(reference[r * cols + g * 32 + c]) * xs[c])
                    }
                }
                let difference = abs(Double(out[t * rows + r]) - Double(expected[t * rows + r]))
                #expect(difference <= bound * 1.001 + magnitude * 1e-6, "row \(t), output \(r)")
            }
        }
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
