#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

// Builds a GGUF v3 file, mainly so tests can make small synthetic models. Layout as gguf.cpp
// writes it: header, key/values, tensor infos, padding, then each tensor's data padded to
// the alignment (the last one too, so the data section is a whole number of alignments).
public struct GGUFWriter {
    public let alignment: Int
    private var metadata: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []

    /// An alignment other than 32 is recorded as general.alignment unless that key is added explicitly.
    public init(alignment: Int = 32) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        self.alignment = alignment
    }

    /// Appends a key; keys are written in the order added. Array elements must all share one type.
    public mutating func add(key: String, _ value: GGUFValue) {
        metadata.append((key, value))
    }

    /// Appends a tensor; `dims` are in ggml ne order and `data` is its raw storage.
    public mutating func addTensor(name: String, dims: [Int], type: GGMLType, data: [UInt8]) {
        let count = dims.reduce(1, *)
        precondition(dims.first.map { $0 % type.blockSize == 0 } ?? false, "row length must be whole \(type) blocks")
        precondition(data.count == type.byteCount(elements: count), "'\(name)' needs \(type.byteCount(elements: count)) bytes, got \(data.count)")
        tensors.append((name, dims, type, data))
    }

    public func serialize() -> [UInt8] {
        var entries = metadata
        if alignment != 32, !entries.contains(where: { $0.key == "general.alignment" }) {
            entries.insert(("general.alignment", .uint32(UInt32(alignment))), at: 0)
        }
        var out: [UInt8] = Array("GGUF".utf8)
        append(UInt32(3), to: &out)
        append(UInt64(tensors.count), to: &out)
        append(UInt64(entries.count), to: &out)
        for (key, value) in entries {
            appendString(key, to: &out)
            append(GGUFValueType(value).rawValue, to: &out)
            appendValue(value, to: &out)
        }
        var offset = 0
        for t in tensors {
            appendString(t.name, to: &out)
            append(UInt32(t.dims.count), to: &out)
            for d in t.dims { append(UInt64(d), to: &out) }
            append(t.type.rawValue, to: &out)
            append(UInt64(offset), to: &out)
            offset += padded(t.data.count)
        }
        out += [UInt8](repeating: 0, count: padded(out.count) - out.count)
        for t in tensors {
            out += t.data
            out += [UInt8](repeating: 0, count: padded(t.data.count) - t.data.count)
        }
        return out
    }

    public func write(to path: String) throws(GGUFError) {
        let bytes = serialize()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard writeAll(fd, bytes) else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    }

    private func padded(_ n: Int) -> Int {
        (n + alignment - 1) / alignment * alignment
    }
}

// Outside the struct so that `write` means the system call, not `GGUFWriter.write(to:)`.
private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { buffer in
        var written = 0
        while written < buffer.count {
            let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            written += n
        }
        return true
    }
}

private func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { out += $0 }
}

private func appendString(_ s: String, to out: inout [UInt8]) {
    append(UInt64(s.utf8.count), to: &out)
    out += s.utf8
}

private func appendValue(_ value: GGUFValue, to out: inout [UInt8]) {
    switch value {
    case .uint8(let v): append(v, to: &out)
    case .int8(let v): append(v, to: &out)
    case .uint16(let v): append(v, to: &out)
    case .int16(let v): append(v, to: &out)
    case .uint32(let v): append(v, to: &out)
    case .int32(let v): append(v, to: &out)
    case .uint64(let v): append(v, to: &out)
    case .int64(let v): append(v, to: &out)
    case .float32(let v): append(v.bitPattern, to: &out)
    case .float64(let v): append(v.bitPattern, to: &out)
    case .bool(let v): append(UInt8(v ? 1 : 0), to: &out)
    case .string(let v): appendString(v, to: &out)
    case .array(let elements):
        // GGUF arrays are homogeneous; an empty one still needs some element type.
        let elementType = elements.first.map(GGUFValueType.init) ?? .uint8
        precondition(elements.allSatisfy { GGUFValueType($0) == elementType }, "GGUF array elements must share one type")
        append(elementType.rawValue, to: &out)
        append(UInt64(elements.count), to: &out)
        for e in elements { appendValue(e, to: &out) }
    }
}
