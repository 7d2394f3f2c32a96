// Small dense vector primitives.

// y[i] += alpha·x[i] over n elements.
@inlinable
public func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    let va = SIMD8<Float>(repeating: alpha)
    var i = 0
    while i + 8 <= n {
        let py = UnsafeMutableRawPointer(y + i)
        let vy = py.loadUnaligned(as: SIMD8<Float>.self)
        let vx = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        py.storeBytes(of: vy.addingProduct(va, vx), as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}
