import Foundation

// out = silu(gate) * up, elementwise, where silu(x) = x / (1 + e^-x). All (n).
@inlinable
public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                          up: UnsafePointer<Float>, n: Int) {
    for i in 0..<n {
        let g = gate[i]
        out[i] = g / (1 + Foundation.exp(-g)) * up[i]
    }
}
