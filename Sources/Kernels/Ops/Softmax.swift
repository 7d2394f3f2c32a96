import Foundation

// In place: x = exp(x - max) / sum. x: (n).
@inlinable
public func softmaxForward(x: UnsafeMutablePointer<Float>, n: Int) {
    var maxValue = -Float.infinity
    for i in 0..<n where x[i] > maxValue { maxValue = x[i] }
    var sum: Float = 0
    for i in 0..<n {
        let e = Foundation.exp(x[i] - maxValue)
        x[i] = e
        sum += e
    }
    let inv = 1 / sum
    for i in 0..<n { x[i] *= inv }
}
