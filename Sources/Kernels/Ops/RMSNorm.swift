// o = w * x / sqrt(mean(x²) + eps), row by row. x,o: (T, dim); w: (dim).
// Sums in Float like the reference implementations do, so results match them closely.
@inlinable
public func rmsNormForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>, T: Int, dim: Int, eps: Float) {
    for t in 0..<T {
        let x = inp + t * dim
        let o = out + t * dim
        var ss: Float = 0
        for i in 0..<dim { ss += x[i] * x[i] }
        let rstd = 1 / (ss / Float(dim) + eps).squareRoot()
        for i in 0..<dim { o[i] = weight[i] * (x[i] * rstd) }
    }
}
