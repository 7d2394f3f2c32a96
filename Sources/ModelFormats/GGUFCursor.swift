// Bounds-checked little-endian reads over the file bytes. Every read either fits in what is
// left of the file or throws, which is what lets a truncated or corrupt file fail cleanly.
struct GGUFCursor {
    let base: UnsafeRawPointer
    let size: Int
    private(set) var offset = 0

    init(base: UnsafeRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    var remaining: Int { size - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else {
            throw .truncated(reading: what(), offset: offset, needed: n, fileSize: size)
        }
        let value = T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += n
        return value
    }

    /// The next `count` bytes, without copying.
    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw .truncated(reading: what(), offset: offset, needed: count, fileSize: size)
        }
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: count)
        offset += count
        return bytes
    }

    /// A gguf_string: u64 length, then that many UTF-8 bytes (no terminator). Invalid UTF-8
    /// is repaired with U+FFFD rather than rejected, as llama.cpp does not validate either.
    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let start = offset
        let length = try read(UInt64.self, "length of \(what())")
        guard length <= UInt64(remaining) else {
            throw .stringTooLong(length: length, offset: start, remaining: remaining)
        }
        return String(decoding: try readBytes(Int(length), what()), as: UTF8.self)
    }
}
