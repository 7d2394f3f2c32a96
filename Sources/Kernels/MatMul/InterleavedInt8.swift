import CSIMD

// The rowwise path with activations rounded to int8 per group of 32, over interleaved
// Q4_1 and Q8_0 matrices (the arithmetic and its order are in CSIMD's interleaved_int8.h).
extension MatMul {
    static func interleavedInt8Forward(out: UnsafeMutablePointer<Float>, outStride: Int,
                                       x: UnsafePointer<Float>, xStride: Int, T: Int,
                                       weight w: WeightMatrix, scratch: UnsafeMutablePointer<Float>,
                                       prefetch: UnsafeBufferPointer<PrefetchSpan>) {
        precondition(graft_int8_scratch_bytes(T, w.cols) <= scratchCount(rows: T, cols: w.cols) * 4,
                     "int8 product of \(T) rows exceeds its scratch")
        graft_int8_prepare(x, xStride, T, w.cols, scratch)
        let blocks = w.rows / 8
        let weights = w.data.assumingMemoryBound(to: UInt8.self)
        Parallel.forEachChunk(blocks, minChunk: 4) { chunk in
            withPrefetchParts(chunk, of: blocks, prefetch) { part, span in
                graft_int8_dot(Int32(w.type.rawValue), weights, part.lowerBound, part.upperBound, w.cols, scratch, T,
                               out, outStride, span?.start, span?.byteCount ?? 0)
            }
        }
    }
}

extension MatMul {
    /// Whether this CPU has VNNI's vpdpbusd on 256-bit registers (AVX-VNNI, or
    /// AVX512-VNNI with AVX512-VL), which the int8 kernels then use by default: the same
    /// integer sums in fewer instructions, so results are bit-identical either way.
    public static var cpuHasInt8VNNI: Bool { graft_int8_has_vnni() != 0 }

    /// Whether the int8 kernels use VNNI now; setting true on a CPU without it
    /// leaves it off. For tests and benchmarks comparing the two kernels.
    public static var int8UsesVNNI: Bool {
        get { graft_int8_vnni() != 0 }
        set { graft_int8_set_vnni(newValue ? 1 : 0) }
    }
}
