// Q4_0 block (ggml block_q4_0), 32 values in 18 bytes at fixed byte offsets:
// d: f16 @0, qs: 16 bytes @2. Low nibbles are values 0..<16, high nibbles 16..<32
// (halves, not interleaved).   value = (nibble - 8) * d.

@inlinable public func dequantizeRowQ4_0(out: UnsafeMutablePointer<Float>, src: UnsafeRawPointer, count: Int) {
    precondition(count % 32 == 0, "Q4_0 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let block = src + b &* 18
        let d = fp16ToFp32(block.loadUnaligned(as: UInt16.self))
        let y = out + b &* 32
        for j in 0..<16 {
            let q = block.load(fromByteOffset: 2 &+ j, as: UInt8.self)
            y[j] = Float(Int(q & 0x0F) &- 8) * d
            y[j &+ 16] = Float(Int(q >> 4) &- 8) * d
        }
    }
}

// Reference quantizer (quantize_row_q4_0_ref): the value of largest magnitude maps to -8,
// so d = max / -8 keeps its sign and the full range -8...7 is used.
@inlinable public func quantizeRowQ4_0(out: UnsafeMutableRawPointer, src: UnsafePointer<Float>, count: Int) {
    precondition(count % 32 == 0, "Q4_0 row length \(count) is not a multiple of 32")
    for b in 0..<(count / 32) {
        let x = src + b &* 32
        let block = out + b &* 18
        var amax: Float = 0
        var vmax: Float = 0
        for j in 0..<32 where abs(x[j]) > amax {
            amax = abs(x[j])
            vmax = x[j]
        }
        let d = vmax / -8
        let id: Float = d != 0 ? 1 / d : 0
        block.storeBytes(of: fp32ToFp16(d), as: UInt16.self)
        for j in 0..<16 {
            let lo = nibbleQ4(x[j] * id + 8.5)
            let hi = nibbleQ4(x[j &+ 16] * id + 8.5)
            block.storeBytes(of: lo | hi << 4, toByteOffset: 2 &+ j, as: UInt8.self)
        }
    }
}

/// ggml's `MIN(15, (int8_t)x)` for the 4-bit quantizers: truncates toward zero, saturates at 15,
/// and sends negatives and NaN to 0 rather than trapping in the integer conversion.
@inlinable func nibbleQ4(_ x: Float) -> UInt8 {
    x >= 0 ? UInt8(min(x, 15)) : 0
}
