// The element types of the safetensors spec that have a whole number of bytes per element.
// Knowing every size lets the reader check each tensor's extent, even for tensors it cannot
// convert to f32 (an integer step counter must not make the whole file unreadable).
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f8E4M3 = "F8_E4M3", f8E5M2 = "F8_E5M2"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8E4M3, .f8E5M2, .i8, .u8, .bool: return 1
        }
    }
}

// One tensor of a validated file: its data lies inside the buffer and matches its shape.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// Row-major, outermost first, as in the header (PyTorch order).
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public let dataOffsets: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}
