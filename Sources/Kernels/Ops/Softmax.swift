// In place: x = exp(x - max) / sum. x: (n). Eight lanes at a time with the vector exp;
// the sum is the eight lane sums reduced, then the tail, the same order for every n.
@inlinable
public func softmaxForward(x: UnsafeMutablePointer<Float>, n: Int) {
    var maxValue = -Float.infinity
    for i in 0..<n where x[i] > maxValue { maxValue = x[i] }
    let shift = SIMD8<Float>(repeating: maxValue)
    var sums = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let p = UnsafeMutableRawPointer(x + i)
        let e = exp(p.loadUnaligned(as: SIMD8<Float>.self) - shift)
        p.storeBytes(of: e, as: SIMD8<Float>.self)
        sums += e
        i += 8
    }
    var sum = sums.sum()
    while i < n {
        let e = exp(SIMD8<Float>(repeating: x[i] - maxValue))[0]
        x[i] = e
        sum += e
        i += 1
    }
    let inv = 1 / sum
    for i in 0..<n { x[i] *= inv }
}
