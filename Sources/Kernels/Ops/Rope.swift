import Foundation

/// Rotary position embedding tables for the "adjacent pairs" layout that GGUF's
/// llama tensors use: llama.cpp's converter permutes the Q and K rows so that the
/// pair (i, i + headDim/2) of the Hugging Face layout sits at (2i, 2i+1).
/// cos/sin are tabulated once for every position so the hot path only reads them.
public final class RopeTable: @unchecked Sendable {
    public let ropeDim: Int
    public let maxPositions: Int
    /// (maxPositions, ropeDim/2) each.
    public let cos: UnsafeMutablePointer<Float>
    public let sin: UnsafeMutablePointer<Float>

    public init(ropeDim: Int, maxPositions: Int, base: Float) {
        self.ropeDim = ropeDim
        self.maxPositions = maxPositions
        let half = ropeDim / 2
        cos = .allocate(capacity: maxPositions * half)
        sin = .allocate(capacity: maxPositions * half)
        // inv_freq and the angle are formed in Float, as the reference (PyTorch) does.
        for i in 0..<half {
            let invFreq = 1 / Foundation.pow(base, Float(2 * i) / Float(ropeDim))
            for p in 0..<maxPositions {
                let angle = Float(p) * invFreq
                cos[p * half + i] = Foundation.cos(angle)
                sin[p * half + i] = Foundation.sin(angle)
            }
        }
    }

    deinit {
        cos.deallocate()
        sin.deallocate()
    }
}

// Rotates each head of x in place: (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos) for
// the adjacent pairs of the first ropeDim dimensions. x: (T, nHeads, headDim);
// positions: (T).
@inlinable
public func ropeForward(x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
                        table: RopeTable, T: Int, nHeads: Int, headDim: Int) {
    let half = table.ropeDim / 2
    for t in 0..<T {
        let p = Int(positions[t])
        precondition(p >= 0 && p < table.maxPositions, "position \(p) beyond the rope table")
        let c = table.cos + p * half
        let s = table.sin + p * half
        for h in 0..<nHeads {
            let v = x + (t * nHeads + h) * headDim
            for i in 0..<half {
                let x0 = v[2 * i], x1 = v[2 * i + 1]
                v[2 * i] = x0 * c[i] - x1 * s[i]
                v[2 * i + 1] = x0 * s[i] + x1 * c[i]
            }
        }
    }
}
