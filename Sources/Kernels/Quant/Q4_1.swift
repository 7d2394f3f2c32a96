// Q4_1 block (ggml block_q4_1), 32 values in 20 bytes at fixed byte offsets:
// d: f16 @0, m: f16 @2, qs: 16 bytes @4. Low nibbles are values 0..<16, high nibbles 16..<32
// (halves, not interleaved).   value = nibble * d + m.

@inlinable public func dequantizeRowQ4_1(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    precondition(count % 32 == 0, "Q4_1 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let block = src + b &* 20
        let d = fp16ToFp32(block.loadUnaligned(as: UInt16.self))
        let m = fp16ToFp32(block.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        let y = out + b &* 32
        for j in 0..<16 {
            let q = block.load(fromByteOffset: 4 &+ j, as: UInt8.self)
            y[j] = Float(q & 0x0F) * d + m
            y[j &+ 16] = Float(q >> 4) * d + m
        }
    }
}

// Reference quantizer (quantize_row_q4_1_ref): per block m = min, d = (max - min) / 15.
@inlinable public func quantizeRowQ4_1(out: UnsafeMutableRawPointer, src: UnsafePointer<Float>, count: Int) {
    precondition(count % 32 == 0, "Q4_1 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let x = src + b &* 32
        let block = out + b &* 20
        var vmin = Float.greatestFiniteMagnitude
        var vmax = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            vmin = min(vmin, x[j])
            vmax = max(vmax, x[j])
        }
        let d = (vmax - vmin) / 15
        let id: Float = d != 0 ? 1 / d : 0
        block.storeBytes(of: fp32ToFp16(d), as: UInt16.self)
        block.storeBytes(of: fp32ToFp16(vmin), toByteOffset: 2, as: UInt16.self)
        for j in 0..<16 {
            let lo = nibbleQ4((x[j] - vmin) * id + 0.5)
            let hi = nibbleQ4((x[j &+ 16] - vmin) * id + 0.5)
            block.storeBytes(of: lo | hi << 4, toByteOffset: 4 &+ j, as: UInt8.self)
        }
    }
}
