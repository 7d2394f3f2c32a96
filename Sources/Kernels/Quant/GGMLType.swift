// Tensor element types as numbered by ggml / GGUF. Only the types Graft can read are
// listed; the GGUF reader rejects the others with a clear error.
public enum GGMLType: UInt32, Sendable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8
    case bf16 = 30

    /// Elements per block (1 for the plain float types).
    @inlinable public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q8_0: return 32
        }
    }

    /// Bytes per block.
    @inlinable public var blockByteCount: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18  // f16 d, 16 bytes of nibbles
        case .q4_1: return 20  // f16 d, f16 m, 16 bytes of nibbles
        case .q8_0: return 34  // f16 d, 32 int8
        }
    }

    /// Bytes taken by `count` elements; `count` must be a multiple of `blockSize`.
    @inlinable public func byteCount(elements count: Int) -> Int {
        (count / blockSize) * blockByteCount
    }

    public var description: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q8_0: return "Q8_0"
        case .bf16: return "BF16"
        }
    }
}
