import Foundation
import Testing
import Kernels

@Suite struct OpsTests {
    @Test func vectorExpMatchesLibm() {
        // Given values across the range softmax and SiLU feed it, and past both limits
        var worst = 0.0
        var x: Float = -87
        while x <= 88 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0137 })
            // When exponentiated eight lanes at a time
            let got = exp(lanes)
            // Then each lane is within 2 ulp-ish (relative 3e-7) of the double-precision value
            for i in 0..<8 {
                let expected = Foundation.exp(Double(lanes[i]))
                worst = max(worst, abs(Double(got[i]) - expected) / expected)
            }
            x += 0.173
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(exp(SIMD8<Float>(repeating: -1_000))[0] < 1e-37)
        #expect(exp(SIMD8<Float>(repeating: 0))[0] == 1)
    }

    @Test func rmsNormMatchesNaive() {
        // Given rows of random values and a weight
        var rng = TestRandom(seed: 1)
        let T = 3, dim = 40
        let x = rng.floats(T * dim, scale: 4), w = rng.floats(dim)
        // When normalised
        var out = [Float](repeating: 0, count: T * dim)
        rmsNormForward(out: &out, inp: x, weight: w, T: T, dim: dim, eps: 1e-5)
        // Then each row is w * x / rms(x)
        for t in 0..<T {
            let row = x[(t * dim)..<((t + 1) * dim)]
            let rms = (row.map { Double($0 * $0) }.reduce(0, +) / Double(dim) + 1e-5).squareRoot()
            for i in 0..<dim {
                #expect(abs(Double(out[t * dim + i]) - Double(w[i]) * Double(x[t * dim + i]) / rms) < 1e-5)
            }
        }
    }

    /// GGUF's adjacent-pair rope on permuted rows must equal Hugging Face's
    /// rotate-half rope on the unpermuted rows: this is the permutation the converter
    /// applies (row 2i <- i, row 2i+1 <- i + d/2 within each head).
    @Test func ropeAdjacentPairsEqualsRotateHalfOnUnpermutedLayout() {
        // Given one head's vector in the Hugging Face layout and its GGUF permutation
        var rng = TestRandom(seed: 2)
        let headDim = 16, nHeads = 2, base: Float = 10_000
        let hf = rng.floats(nHeads * headDim)
        var gguf = hf
        for h in 0..<nHeads {
            for i in 0..<(headDim / 2) {
                gguf[h * headDim + 2 * i] = hf[h * headDim + i]
                gguf[h * headDim + 2 * i + 1] = hf[h * headDim + i + headDim / 2]
            }
        }
        let position: Int32 = 37
        // When rope rotates the GGUF layout
        let table = RopeTable(ropeDim: headDim, maxPositions: 64, base: base)
        var positions = [position]
        ropeForward(x: &gguf, positions: &positions, table: table, T: 1, nHeads: nHeads, headDim: headDim)
        // Then it equals rotate-half on the HF layout, permuted the same way
        for h in 0..<nHeads {
            for i in 0..<(headDim / 2) {
                let theta = Double(position) / pow(Double(base), Double(2 * i) / Double(headDim))
                let x0 = Double(hf[h * headDim + i]), x1 = Double(hf[h * headDim + i + headDim / 2])
                let y0 = x0 * cos(theta) - x1 * sin(theta)
                let y1 = x1 * cos(theta) + x0 * sin(theta)
                #expect(abs(Double(gguf[h * headDim + 2 * i]) - y0) < 1e-4)
                #expect(abs(Double(gguf[h * headDim + 2 * i + 1]) - y1) < 1e-4)
            }
        }
    }

    @Test func swigluAndSoftmaxMatchDefinitions() {
        // Given random inputs
        var rng = TestRandom(seed: 3)
        let gate = rng.floats(33, scale: 6), up = rng.floats(33)
        // When applied
        var out = [Float](repeating: 0, count: 33)
        swigluForward(out: &out, gate: gate, up: up, n: 33)
        var probs = gate
        softmaxForward(x: &probs, n: 33)
        // Then they follow the formulas
        let total = gate.map { exp(Double($0)) }.reduce(0, +)
        for i in 0..<33 {
            let g = Double(gate[i])
            #expect(abs(Double(out[i]) - g / (1 + exp(-g)) * Double(up[i])) < 1e-5)
            #expect(abs(Double(probs[i]) - exp(g) / total) < 1e-6)
        }
    }

    @Test func axpyHandlesTails() {
        // Given lengths that are not multiples of the SIMD width
        var rng = TestRandom(seed: 4)
        for n in [1, 7, 8, 15, 16, 17, 40] {
            let a = rng.floats(n)
            var y = rng.floats(n)
            let y0 = y
            // When computed
            axpy(&y, 0.5, a, n)
            // Then it matches the scalar definition
            for i in 0..<n { #expect(abs(y[i] - (y0[i] + 0.5 * a[i])) < 1e-6) }
        }
    }
}
