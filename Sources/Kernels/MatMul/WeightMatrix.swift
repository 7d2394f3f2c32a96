/// How a model's Q4_1 and Q8_0 matrices are held for the decode rows' products. Both are exact
/// f32 math and batch invariant; they differ in speed (README: the measured figures).
public enum WeightLayout: String, Sendable, CaseIterable {
    /// As stored in the file; the layout the int16-activation kernels read.
    case rowMajor = "row-major"
    /// Q4_1 and Q8_0 re-laid eight rows at a time at load (InterleavedWeights.swift): the
    /// default, about 1.5 times as fast for a single stream and as fast for batches.
    case interleaved

    /// The layout for decode rows with `activations` when none is asked for:
    /// interleaved, except with int16 activations, whose kernels read row-major weights.
    public static func defaultLayout(for activations: MatMul.ActivationPrecision) -> WeightLayout {
        activations == .int16 ? .rowMajor : .interleaved
    }
}

/// A read-only view of a 2-D weight stored in any GGML type: `rows` output features,
/// each a contiguous row of `cols` input features (ggml's ne0 = cols). The bytes
/// usually live in the mmap'd model file; Q4_1 and Q8_0 weights may instead be
/// interleaved eight rows at a time (CSIMD's interleaved.h) for their decode kernels.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let data: UnsafeRawPointer
    public let rows: Int
    public let cols: Int
    /// Rows interleaved eight at a time (Q4_1 and Q8_0), not row-major.
    public let interleaved: Bool

    public init(type: GGMLType, data: UnsafeRawPointer, rows: Int, cols: Int, interleaved: Bool = false) {
        precondition(cols % 32 == 0, "weight rows must be a multiple of 32 elements, got \(cols)")
        precondition(!interleaved || ((type == .q4_1 || type == .q8_0) && rows % 8 == 0),
                     "only Q4_1 and Q8_0 rows in eights are interleaved")
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
        self.interleaved = interleaved
    }

    /// Bytes a row takes (in either layout).
    @inlinable public var rowByteCount: Int { type.byteCount(elements: cols) }

    /// Row r of a row-major matrix.
    @inlinable public func row(_ r: Int) -> UnsafeRawPointer {
        precondition(!interleaved, "an interleaved matrix has no contiguous rows")
        return data + r * rowByteCount
    }
}
