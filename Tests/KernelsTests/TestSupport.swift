import Kernels

/// Deterministic pseudo-random floats for kernel tests (no dependency on the
/// system generator, so failures reproduce).
struct TestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    mutating func float(scale: Float = 1) -> Float {
        (Float(next() >> 40) / 16_777_216.0 * 2 - 1) * scale
    }

    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in float(scale: scale) }
    }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Stores `values` (rows × cols) in `type`, through the reference quantizers.
func encodeMatrix(_ values: [Float], rows: Int, cols: Int, type: GGMLType) -> [UInt8] {
    let rowBytes = type.byteCount(elements: cols)
    var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
    values.withUnsafeBufferPointer { src in
        bytes.withUnsafeMutableBytes { dst in
            for r in 0..<rows {
                let s = src.baseAddress! + r * cols
                let d = dst.baseAddress! + r * rowBytes
                switch type {
                case .f32: d.copyMemory(from: s, byteCount: cols * 4)
                case .f16: for i in 0..<cols { d.storeBytes(of: fp32ToFp16(s[i]), toByteOffset: 2 * i, as: UInt16.self) }
                case .bf16: for i in 0..<cols { d.storeBytes(of: fp32ToBf16(s[i]), toByteOffset: 2 * i, as: UInt16.self) }
                case .q4_0: quantizeRowQ4_0(out: d, src: s, count: cols)
                case .q4_1: quantizeRowQ4_1(out: d, src: s, count: cols)
                case .q8_0: quantizeRowQ8_0(out: d, src: s, count: cols)
                }
            }
        }
    }
    return bytes
}

/// The stored matrix back in f32, through the scalar reference dequantizer.
func decodeMatrixReference(_ bytes: [UInt8], rows: Int, cols: Int, type: GGMLType) -> [Float] {
    let rowBytes = type.byteCount(elements: cols)
    var out = [Float](repeating: 0, count: rows * cols)
    bytes.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dst in
            for r in 0..<rows {
                dequantizeRow(type: type, out: dst.baseAddress! + r * cols,
                              src: src.baseAddress! + r * rowBytes, count: cols)
            }
        }
    }
    return out
}
