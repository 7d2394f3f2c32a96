#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

// Builds a safetensors file byte for byte as the Hugging Face library writes it: compact
// header JSON, tensors laid out by decreasing element size then name (so every tensor is
// aligned to its element size), "__metadata__" first, and the header padded with spaces
// so the data buffer starts at a multiple of 8. Metadata keys are sorted so that output
// is deterministic (the HF writer uses hash order).
public struct SafetensorsWriter {
    public var metadata: [String: String] = [:]
    private var entries: [Entry] = []

    private struct Entry {
        let name: String
        let dtype: SafetensorsDType
        let shape: [Int]
        let data: [UInt8]
    }

    public init() {}

    /// Stores `floats` as F32. `shape` is row-major, outermost first.
    public mutating func add(name: String, shape: [Int], floats: [Float]) {
        append(name: name, dtype: .f32, shape: shape, count: floats.count, data: littleEndianBytes(floats.map(\.bitPattern)))
    }

    /// Stores `floats` rounded to F16 (nearest, ties to even).
    public mutating func add(name: String, shape: [Int], f16 floats: [Float]) {
        append(name: name, dtype: .f16, shape: shape, count: floats.count, data: littleEndianBytes(floats.map(fp32ToFp16)))
    }

    /// Stores `floats` rounded to BF16 (nearest, ties to even).
    public mutating func add(name: String, shape: [Int], bf16 floats: [Float]) {
        append(name: name, dtype: .bf16, shape: shape, count: floats.count, data: littleEndianBytes(floats.map(fp32ToBf16)))
    }

    private mutating func append(name: String, dtype: SafetensorsDType, shape: [Int], count: Int, data: [UInt8]) {
        precondition(name != "__metadata__", "'__metadata__' is reserved for the metadata block")
        precondition(!entries.contains { $0.name == name }, "duplicate tensor '\(name)'")
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == count,
                     "tensor '\(name)': shape \(shape) does not hold \(count) elements")
        entries.append(Entry(name: name, dtype: dtype, shape: shape, data: data))
    }

    public func serialize() -> [UInt8] {
        let ordered = entries.sorted { a, b in
            a.dtype.byteSize != b.dtype.byteSize ? a.dtype.byteSize > b.dtype.byteSize
                : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for entry in ordered {
            let shape = entry.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(entry.name)):{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],"
                          + "\"data_offsets\":[\(offset),\(offset + entry.data.count)]}")
            offset += entry.data.count
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

        var out = littleEndianBytes([UInt64(header.count)])
        out.reserveCapacity(8 + header.count + offset)
        out += header
        for entry in ordered { out += entry.data }
        return out
    }

    public func write(to path: String) throws(SafetensorsError) {
        let bytes = serialize()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let failure = writeAll(fd, bytes)
        if let failure { throw .cannotWrite(path: path, reason: failure) }
    }
}

// nil on success, else the reason. A free function so `write` means the system call.
private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
    bytes.withUnsafeBytes { buffer -> String? in
        var written = 0
        while written < buffer.count {
            let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return String(cString: strerror(errno)) }
            written += n
        }
        return nil
    }
}

private func littleEndianBytes<T: FixedWidthInteger>(_ words: [T]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(words.count * MemoryLayout<T>.size)
    for word in words { withUnsafeBytes(of: word.littleEndian) { out += $0 } }
    return out
}

// JSON string literal escaped as serde_json does: quote, backslash and control characters
// only; everything else, including non-ASCII, stays as UTF-8.
private func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
