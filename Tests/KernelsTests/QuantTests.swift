import Testing
import Kernels

// Deterministic generator so a failing case reproduces (SplitMix64).
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// Decodes a binary float with the given field widths from its bit formula, independently of
// Float16 and of the shift trick the kernels use.
private func decodeBinaryFloat(_ bits: UInt32, exponentBits: Int, mantissaBits: Int) -> Float {
    let mantissa = Int(bits & (1 << mantissaBits - 1))
    let exponent = Int(bits >> mantissaBits) & (1 << exponentBits - 1)
    let negative = bits >> (exponentBits + mantissaBits) & 1 == 1
    let bias = 1 << (exponentBits - 1) - 1
    let magnitude: Float
    if exponent == 0 {  // zero and subnormals: m * 2^(1 - bias - mantissaBits)
        magnitude = Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: Float(mantissa))
    } else if exponent == 1 << exponentBits - 1 {
        magnitude = mantissa == 0 ? .infinity : .nan
    } else {
        magnitude = Float(sign: .plus, exponent: exponent - bias, significand: 1 + Float(mantissa) / Float(1 << mantissaBits))
    }
    return negative ? -magnitude : magnitude
}

private func sameFloat(_ a: Float, _ b: Float) -> Bool {
    a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern
}

// Raw bytes of `blocks` random blocks whose f16 scale fields (at `scaleOffsets`) hold finite values.
private func randomBlocks(_ type: GGMLType, blocks: Int, scaleOffsets: [Int], rng: inout SplitMix64) -> [UInt8] {
    var bytes = (0..<blocks * type.blockByteCount).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    for b in 0..<blocks {
        for o in scaleOffsets {
            let h = fp32ToFp16(Float.random(in: -0.5...0.5, using: &rng))
            bytes[b * type.blockByteCount + o] = UInt8(h & 0xFF)
            bytes[b * type.blockByteCount + o + 1] = UInt8(h >> 8)
        }
    }
    return bytes
}

private func halfAt(_ bytes: [UInt8], _ offset: Int) -> Float {
    decodeBinaryFloat(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8, exponentBits: 5, mantissaBits: 10)
}

// Runs the dispatching dequantizer on `bytes` placed one byte past an aligned start, so
// that every multi-byte field load is unaligned.
private func dequantizeUnaligned(_ type: GGMLType, _ bytes: [UInt8], count: Int) -> [Float] {
    let shifted = [0] + bytes
    var out = [Float](repeating: .nan, count: count)
    shifted.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { dequantizeRow(type: type, out: $0.baseAddress!, src: src.baseAddress! + 1, count: count) }
    }
    return out
}

private func quantize(_ x: [Float], with quantizeRow: (UnsafeMutableRawPointer, UnsafePointer<Float>, Int) -> Void, type: GGMLType) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: type.byteCount(elements: x.count))
    bytes.withUnsafeMutableBytes { out in x.withUnsafeBufferPointer { quantizeRow(out.baseAddress!, $0.baseAddress!, x.count) } }
    return bytes
}

@Suite struct HalfConversionTests {
    @Test func fp16ToFp32MatchesBitFormulaForAllPatterns() {
        // Given every one of the 65536 half bit patterns (zeros, subnormals, inf, nan included)
        for h in 0...UInt32(UInt16.max) {
            // When widened / Then it equals the value computed from the IEEE bit formula
            let expected = decodeBinaryFloat(h, exponentBits: 5, mantissaBits: 10)
            #expect(sameFloat(fp16ToFp32(UInt16(h)), expected), "half 0x\(String(h, radix: 16))")
        }
    }

    @Test func fp32ToFp16RoundTripsEveryNonNaNHalf() {
        // Given every half that is not NaN, When widened and narrowed again, Then the bits are unchanged
        for h in 0...UInt16.max where !fp16ToFp32(h).isNaN {
            #expect(fp32ToFp16(fp16ToFp32(h)) == h)
        }
    }

    @Test func fp32ToFp16EdgeCases() {
        // Given values at the rounding, overflow and underflow edges, Then they narrow as IEEE round-to-nearest-even
        #expect(fp32ToFp16(-0.0) == 0x8000)
        #expect(fp32ToFp16(.infinity) == 0x7C00)
        #expect(fp32ToFp16(-.infinity) == 0xFC00)
        #expect(fp32ToFp16(65504) == 0x7BFF)             // largest finite half
        #expect(fp32ToFp16(65519) == 0x7BFF)             // just below the rounding midpoint
        #expect(fp32ToFp16(65520) == 0x7C00)             // midpoint ties up to infinity
        #expect(fp32ToFp16(0x1p-24) == 0x0001)           // smallest subnormal
        #expect(fp32ToFp16(0x1p-25) == 0x0000)           // half of it ties to even (zero)
        #expect(fp32ToFp16(0x1.8p-24) == 0x0002)         // 1.5 ulp ties to even (2)
        #expect(fp32ToFp16(0x1p-14) == 0x0400)           // smallest normal
        #expect(fp32ToFp16(1 + 0x1p-11) == 0x3C00)       // tie rounds to even mantissa
        #expect(fp32ToFp16(1 + 0x1.8p-10) == 0x3C02)     // tie rounds up to even mantissa
        let nan = fp32ToFp16(.nan)
        #expect(nan & 0x7C00 == 0x7C00 && nan & 0x03FF != 0)
    }

    @Test func bf16ToFp32MatchesBitFormulaForAllPatterns() {
        // Given every bfloat16 bit pattern, When widened, Then it equals the 8/7-bit IEEE formula
        for h in 0...UInt32(UInt16.max) {
            let expected = decodeBinaryFloat(h, exponentBits: 8, mantissaBits: 7)
            #expect(sameFloat(bf16ToFp32(UInt16(h)), expected), "bf16 0x\(String(h, radix: 16))")
        }
    }

    @Test func fp32ToBf16EdgeCases() {
        // Given values at the rounding edges and the specials, Then they narrow with ties to even, keeping NaN
        #expect(fp32ToBf16(1) == 0x3F80)
        #expect(fp32ToBf16(-0.0) == 0x8000)
        #expect(fp32ToBf16(.infinity) == 0x7F80)
        #expect(fp32ToBf16(-.infinity) == 0xFF80)
        #expect(fp32ToBf16(1 + 0x1p-8) == 0x3F80)                // tie to even (down)
        #expect(fp32ToBf16(1 + 0x1.8p-7) == 0x3F82)              // tie to even (up)
        #expect(fp32ToBf16(1 + 0x1p-8 + 0x1p-20) == 0x3F81)      // above the tie
        #expect(fp32ToBf16(Float(bitPattern: 0x0001_0000)) == 0x0001)  // subnormal is kept
        #expect(fp32ToBf16(.greatestFiniteMagnitude) == 0x7F80)   // rounds past the largest bf16
        // A NaN whose payload sits only in the dropped bits must not become infinity.
        #expect(bf16ToFp32(fp32ToBf16(Float(bitPattern: 0x7F80_0001))).isNaN)
        for h in 0...UInt16.max where !bf16ToFp32(h).isNaN {
            #expect(fp32ToBf16(bf16ToFp32(h)) == h)
        }
    }
}

@Suite struct DequantizeTests {
    @Test func blockLayoutsMatchGGML() {
        // Given the ggml block structs, Then sizes are 2*f16 + 16 (Q4_1), f16 + 16 (Q4_0), f16 + 32 (Q8_0)
        #expect(GGMLType.q4_1.blockByteCount == 20 && GGMLType.q4_1.blockSize == 32)
        #expect(GGMLType.q4_0.blockByteCount == 18 && GGMLType.q4_0.blockSize == 32)
        #expect(GGMLType.q8_0.blockByteCount == 34 && GGMLType.q8_0.blockSize == 32)
    }

    @Test func q4_1MatchesPerValueReference() {
        // Given random Q4_1 blocks
        var rng = SplitMix64(state: 1)
        let blocks = 37
        let bytes = randomBlocks(.q4_1, blocks: blocks, scaleOffsets: [0, 2], rng: &rng)
        // When dequantized
        let out = dequantizeUnaligned(.q4_1, bytes, count: blocks * 32)
        // Then value j of a block is its nibble (low half first, then high half) * d + m
        for i in 0..<out.count {
            let block = (i / 32) * 20, j = i % 32
            let byte = bytes[block + 4 + j % 16]
            let nibble = j < 16 ? byte & 0xF : byte >> 4
            #expect(out[i] == Float(nibble) * halfAt(bytes, block) + halfAt(bytes, block + 2), "value \(i)")
        }
    }

    @Test func q4_0MatchesPerValueReference() {
        // Given random Q4_0 blocks
        var rng = SplitMix64(state: 2)
        let blocks = 29
        let bytes = randomBlocks(.q4_0, blocks: blocks, scaleOffsets: [0], rng: &rng)
        // When dequantized
        let out = dequantizeUnaligned(.q4_0, bytes, count: blocks * 32)
        // Then value j is (nibble - 8) * d with the same half-split nibble order
        for i in 0..<out.count {
            let block = (i / 32) * 18, j = i % 32
            let byte = bytes[block + 2 + j % 16]
            let nibble = Int(j < 16 ? byte & 0xF : byte >> 4)
            #expect(out[i] == Float(nibble - 8) * halfAt(bytes, block), "value \(i)")
        }
    }

    @Test func q8_0MatchesPerValueReference() {
        // Given random Q8_0 blocks
        var rng = SplitMix64(state: 3)
        let blocks = 23
        let bytes = randomBlocks(.q8_0, blocks: blocks, scaleOffsets: [0], rng: &rng)
        // When dequantized
        let out = dequantizeUnaligned(.q8_0, bytes, count: blocks * 32)
        // Then value j is the signed byte qs[j] times d
        for i in 0..<out.count {
            let block = (i / 32) * 34
            let q = Int8(bitPattern: bytes[block + 2 + i % 32])
            #expect(out[i] == Float(q) * halfAt(bytes, block), "value \(i)")
        }
    }

    @Test func plainFloatRowsMatchPerValueReference() {
        // Given random finite f32, f16 and bf16 values stored little-endian
        var rng = SplitMix64(state: 4)
        let x = (0..<101).map { _ in Float.random(in: -1000...1000, using: &rng) }
        let f32 = x.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> ($0 * 8)) } }
        let f16 = x.map(fp32ToFp16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let bf16 = x.map(fp32ToBf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        // When dequantized, Then each value decodes by its own bit formula (f32 is copied)
        #expect(dequantizeUnaligned(.f32, f32, count: x.count) == x)
        let h = dequantizeUnaligned(.f16, f16, count: x.count)
        let b = dequantizeUnaligned(.bf16, bf16, count: x.count)
        for i in 0..<x.count {
            #expect(h[i] == halfAt(f16, 2 * i))
            let bits = UInt32(bf16[2 * i]) | UInt32(bf16[2 * i + 1]) << 8
            #expect(b[i] == decodeBinaryFloat(bits, exponentBits: 8, mantissaBits: 7))
        }
    }
}

@Suite struct QuantizeRoundTripTests {
    private func randomRow(seed: UInt64, count: Int) -> [Float] {
        var rng = SplitMix64(state: seed)
        // Blocks of very different scales, as in real weights.
        return (0..<count).map { (i: Int) -> Float in
            let scale = Float(1 << (i / 32 % 4))
            let shift = Float(i / 32 % 3) * 0.25
            return Float.random(in: -1...1, using: &rng) * scale + shift
        }
    }

    @Test func q4_1ErrorIsWithinHalfAStep() {
        // Given a random row
        let x = randomRow(seed: 10, count: 32 * 64)
        // When quantized to Q4_1 and dequantized
        let bytes = quantize(x, with: quantizeRowQ4_1, type: .q4_1)
        let y = dequantizeUnaligned(.q4_1, bytes, count: x.count)
        // Then each error is at most half a step plus the f16 rounding of d and m
        for b in 0..<(x.count / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let d = (block.max()! - block.min()!) / 15
            let bound = 0.5 * d + 16 * d * 0x1p-11 + abs(block.min()!) * 0x1p-11 + 1e-6
            for i in block.indices { #expect(abs(y[i] - x[i]) <= bound, "value \(i)") }
        }
    }

    @Test func q4_0ErrorIsWithinOneStep() {
        // Given a random row
        let x = randomRow(seed: 11, count: 32 * 64)
        // When quantized to Q4_0 and dequantized
        let bytes = quantize(x, with: quantizeRowQ4_0, type: .q4_0)
        let y = dequantizeUnaligned(.q4_0, bytes, count: x.count)
        // Then the value of largest magnitude is exact up to f16 rounding, and every error is below one step
        // (the grid -8...7 reaches only 7 steps on the side opposite to that value, where it clamps).
        for b in 0..<(x.count / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let d = block.map(abs).max()! / 8
            for i in block.indices { #expect(abs(y[i] - x[i]) <= d * (1 + 0x1p-7) + 1e-6, "value \(i)") }
        }
    }

    @Test func q8_0ErrorIsWithinHalfAStep() {
        // Given a random row
        let x = randomRow(seed: 12, count: 32 * 64)
        // When quantized to Q8_0 and dequantized
        let bytes = quantize(x, with: quantizeRowQ8_0, type: .q8_0)
        let y = dequantizeUnaligned(.q8_0, bytes, count: x.count)
        // Then each error is at most half a step plus 127 times the f16 rounding of d
        for b in 0..<(x.count / 32) {
            let block = x[(b * 32)..<(b * 32 + 32)]
            let d = block.map(abs).max()! / 127
            for i in block.indices { #expect(abs(y[i] - x[i]) <= 0.5 * d + 128 * d * 0x1p-11 + 1e-6, "value \(i)") }
        }
    }

    @Test func valuesOnTheGridRoundTripExactly() {
        // Given rows built from exact grid points (power-of-two steps, both ends of the range present)
        let q4_1 = (0..<64).map { Float($0 % 16) * 0.125 - 1 }
        let q8_0 = (0..<64).map { Float(($0 * 37) % 255 - 127) * 0x1p-7 }
        let q8_0Row = q8_0.enumerated().map { $0.offset % 32 == 0 ? 127 * 0x1p-7 : $0.element }
        let q4_0 = (0..<64).map { $0 % 32 == 0 ? Float(-8) * -0.5 : Float($0 % 16 - 8) * -0.5 }
        // When quantized and dequantized, Then nothing changes
        #expect(dequantizeUnaligned(.q4_1, quantize(q4_1, with: quantizeRowQ4_1, type: .q4_1), count: 64) == q4_1)
        #expect(dequantizeUnaligned(.q8_0, quantize(q8_0Row, with: quantizeRowQ8_0, type: .q8_0), count: 64) == q8_0Row)
        #expect(dequantizeUnaligned(.q4_0, quantize(q4_0, with: quantizeRowQ4_0, type: .q4_0), count: 64) == q4_0)
    }

    @Test func zeroBlocksStayZero() {
        // Given an all-zero row (d = 0 takes the 1/d guard)
        let x = [Float](repeating: 0, count: 64)
        // Then every format returns zeros
        #expect(dequantizeUnaligned(.q4_1, quantize(x, with: quantizeRowQ4_1, type: .q4_1), count: 64) == x)
        #expect(dequantizeUnaligned(.q4_0, quantize(x, with: quantizeRowQ4_0, type: .q4_0), count: 64) == x)
        #expect(dequantizeUnaligned(.q8_0, quantize(x, with: quantizeRowQ8_0, type: .q8_0), count: 64) == x)
    }
}
