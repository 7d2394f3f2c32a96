import Testing
import Kernels

@Suite struct RowInvariantGEMMTests {
    /// out[t, n] for W[n, k] at w[n·rowStride + k·colStride]: one fused multiply-add
    /// chain over k in order, one scalar at a time (the order the kernel promises).
    func sequentialReference(x: [Float], T: Int, K: Int, w: [Float], rowStride: Int, colStride: Int, n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: T * n)
        for t in 0..<T {
            for j in 0..<n {
                var acc: Float = 0
                for k in 0..<K { acc = acc.addingProduct(w[j * rowStride + k * colStride], x[t * K + k]) }
                out[t * n + j] = acc
            }
        }
        return out
    }

    /// The kernel's out (T × n) for x (T × K).
    func product(x: [Float], T: Int, K: Int, w: [Float], rowStride: Int, colStride: Int, n: Int,
                 initial: [Float]? = nil) -> [Float] {
        var packed = [Float](repeating: .nan, count: RowInvariantGEMM.packedCount(rows: T, cols: K))
        var out = initial ?? [Float](repeating: .nan, count: T * n)
        RowInvariantGEMM.pack(x, xStride: K, T: T, K: K, into: &packed)
        RowInvariantGEMM.product(out: &out, outStride: n, packed: packed, T: T, K: K, w: w,
                                 rowStride: rowStride, colStride: colStride, rows: 0..<n, accumulate: initial != nil)
        return out
    }

    @Test(arguments: [1, 2, 7, 16, 17, 40], [1, 5, 6, 13])
    func eachElementIsOneChainOverKInOrder(T: Int, n: Int) {
        // Given T rows of x and n weight rows, stored row-major and transposed
        var rng = TestRandom(seed: UInt64(T * 100 + n))
        let K = 37
        let x = rng.floats(T * K), w = rng.floats(n * K)
        let transposed = (0..<(K * n)).map { i in w[i % n * K + i / n] }
        // When multiplied by the kernel with either layout
        let rowMajor = product(x: x, T: T, K: K, w: w, rowStride: K, colStride: 1, n: n)
        let columnMajor = product(x: x, T: T, K: K, w: transposed, rowStride: 1, colStride: n, n: n)
        // Then both are bit-identical to the scalar chain
        let expected = sequentialReference(x: x, T: T, K: K, w: w, rowStride: K, colStride: 1, n: n)
        #expect(rowMajor == expected)
        #expect(columnMajor == expected)
    }

    @Test func aRowsResultDoesNotDependOnTheOtherRows() {
        // Given 45 rows of x
        var rng = TestRandom(seed: 7)
        let K = 96, n = 20, T = 45
        let x = rng.floats(T * K), w = rng.floats(n * K)
        let together = product(x: x, T: T, K: K, w: w, rowStride: K, colStride: 1, n: n)
        // When they are cut into chunks of every size from 1 to 45
        for chunk in 1...T {
            var chunked: [Float] = []
            for start in stride(from: 0, to: T, by: chunk) {
                let rows = min(chunk, T - start)
                chunked += product(x: Array(x[(start * K)..<((start + rows) * K)]), T: rows, K: K, w: w,
                                   rowStride: K, colStride: 1, n: n)
            }
            // Then every row's result is bit-identical to the one call
            #expect(chunked == together, "chunks of \(chunk)")
        }
    }

    @Test func accumulateAddsToWhatIsThere() {
        // Given an output that already holds values
        var rng = TestRandom(seed: 11)
        let K = 24, n = 9, T = 19
        let x = rng.floats(T * K), w = rng.floats(n * K), base = rng.floats(T * n)
        // When the product is accumulated into it
        let out = product(x: x, T: T, K: K, w: w, rowStride: K, colStride: 1, n: n, initial: base)
        // Then each element is the old value plus the chain
        let chain = sequentialReference(x: x, T: T, K: K, w: w, rowStride: K, colStride: 1, n: n)
        #expect(out == zip(base, chain).map { $0 + $1 })
    }
}
