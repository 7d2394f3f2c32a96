// Small dense vector primitives shared by the attention and sampling code.

// Σ a[i]·b[i] over n elements.
@inlinable
public func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        let pa = UnsafeRawPointer(a + i), pb = UnsafeRawPointer(b + i)
        acc0 = acc0.addingProduct(pa.loadUnaligned(as: SIMD8<Float>.self),
                                  pb.loadUnaligned(as: SIMD8<Float>.self))
        acc1 = acc1.addingProduct(pa.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self),
                                  pb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        i += 16
    }
    var sum = (acc0 + acc1).sum()
    while i < n { sum += a[i] * b[i]; i += 1 }
    return sum
}

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
