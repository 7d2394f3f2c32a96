// Q8_0 block (ggml block_q8_0), 32 values in 34 bytes, read at fixed byte offsets because
// Swift promises no struct layout:  d: f16 @0, qs: int8[32] @2.   value[j] = qs[j] * d.

@inlinable public func dequantizeRowQ8_0(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    precondition(count % 32 == 0, "Q8_0 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let block = src + b &* 34
        let d = fp16ToFp32(block.loadUnaligned(as: UInt16.self))
        let y = out + b &* 32
        for j in 0..<32 {
            y[j] = Float(block.load(fromByteOffset: 2 &+ j, as: Int8.self)) * d
        }
    }
}

// Reference quantizer (quantize_row_q8_0_ref): d = amax / 127, qs = round(x / d).
@inlinable public func quantizeRowQ8_0(out: UnsafeMutableRawPointer, src: UnsafePointer<Float>, count: Int) {
    precondition(count % 32 == 0, "Q8_0 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let x = src + b &* 32
        let block = out + b &* 34
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        block.storeBytes(of: fp32ToFp16(d), as: UInt16.self)
        for j in 0..<32 {
            // Clamped, and NaN sent to 0, so odd input cannot trap in the Int8 conversion.
            let q = (x[j] * id).rounded()
            let qs: Int8 = q.isNaN ? 0 : Int8(max(-127, min(q, 127)))
            block.storeBytes(of: qs, toByteOffset: 2 &+ j, as: Int8.self)
        }
    }
}
