/// A read-only view of a 2-D weight stored in any GGML type: `rows` output features,
/// each a contiguous row of `cols` input features (ggml's ne0 = cols). The bytes
/// usually live in the mmap'd model file.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let data: UnsafeRawPointer
    public let rows: Int
    public let cols: Int

    public init(type: GGMLType, data: UnsafeRawPointer, rows: Int, cols: Int) {
        precondition(cols % 32 == 0, "weight rows must be a multiple of 32 elements, got \(cols)")
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
    }

    @inlinable public var rowByteCount: Int { type.byteCount(elements: cols) }

    @inlinable public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowByteCount }
}
