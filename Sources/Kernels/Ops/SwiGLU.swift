// out = silu(gate) * up, elementwise, where silu(x) = x / (1 + e^-x). All (n).
@inlinable
public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                          up: UnsafePointer<Float>, n: Int) {
    var i = 0
    while i + 8 <= n {
        let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
        let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + exp(-g)) * u, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        let g = SIMD8<Float>(repeating: gate[i])
        out[i] = (g / (1 + exp(-g)))[0] * up[i]
        i += 1
    }
}
