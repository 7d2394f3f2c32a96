import Kernels

// One entry of the GGUF tensor table. The reader has already checked the shape, the type,
// the alignment and that the data lies inside the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml `ne` order: dims[0] is the innermost (row length), so the storage is
    /// dims.count-1 ... 0 nested, row-major over the reversed dims.
    public let dims: [Int]
    public let type: GGMLType
    /// Byte offset relative to the start of the data section.
    public let offset: Int
    public let elementCount: Int
    public let byteCount: Int
}
