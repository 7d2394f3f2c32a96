import Kernels

// Everything the GGUF header says, validated against the size of the bytes it came from.
struct GGUFLayout {
    var version: Int
    var alignment: Int
    var metadata: [String: GGUFValue]
    var metadataKeys: [String]
    var tensors: [GGUFTensorInfo]
    /// Absolute file offset of the data section; tensor offsets are relative to it.
    var dataOffset: Int
}

// Layout (gguf.cpp): "GGUF", u32 version, u64 tensor count, u64 kv count, the key/values,
// the tensor infos, padding to the alignment, then the tensor data.
func parseGGUF(base: UnsafeRawPointer, size: Int) throws(GGUFError) -> GGUFLayout {
    var cursor = GGUFCursor(base: base, size: size)
    let magic = try cursor.readBytes(4, "magic")
    guard magic.elementsEqual("GGUF".utf8) else { throw .badMagic(Array(magic)) }
    // Version 1 used 32-bit counts and is long gone; later versions are not known yet.
    let version = try cursor.read(UInt32.self, "version")
    guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }

    let tensorCountOffset = cursor.offset
    let tensorCount = try cursor.read(UInt64.self, "tensor count")
    let kvCountOffset = cursor.offset
    let kvCount = try cursor.read(UInt64.self, "metadata key/value count")
    // Reject absurd counts before reserving anything for them.
    guard tensorCount <= UInt64(cursor.remaining / minimumTensorInfoBytes) else {
        throw .countTooLarge(what: "tensor count", count: tensorCount, offset: tensorCountOffset, remaining: cursor.remaining)
    }
    guard kvCount <= UInt64(cursor.remaining / minimumKeyValueBytes) else {
        throw .countTooLarge(what: "metadata key/value count", count: kvCount, offset: kvCountOffset, remaining: cursor.remaining)
    }

    var metadata: [String: GGUFValue] = [:]
    var keys: [String] = []
    keys.reserveCapacity(Int(kvCount))
    for _ in 0..<Int(kvCount) {
        let key = try cursor.readString("metadata key")
        guard metadata[key] == nil else { throw .duplicateKey(key) }
        let type = try cursor.read(UInt32.self, "type of '\(key)'")
        metadata[key] = try readValue(&cursor, type: type, key: key, depth: 0)
        keys.append(key)
    }

    let alignment = try readAlignment(metadata)
    var tensors: [GGUFTensorInfo] = []
    tensors.reserveCapacity(Int(tensorCount))
    var names = Set<String>()
    for _ in 0..<Int(tensorCount) {
        let info = try readTensorInfo(&cursor, alignment: alignment)
        guard names.insert(info.name).inserted else { throw .duplicateTensor(info.name) }
        tensors.append(info)
    }

    let dataOffset = (cursor.offset + alignment - 1) / alignment * alignment
    for t in tensors {
        let (start, o1) = dataOffset.addingReportingOverflow(t.offset)
        let (end, o2) = start.addingReportingOverflow(t.byteCount)
        guard !o1, !o2, end <= size else {
            throw .tensorOutOfBounds(name: t.name, offset: start, byteCount: t.byteCount, fileSize: size)
        }
    }
    return GGUFLayout(version: Int(version), alignment: alignment, metadata: metadata,
                      metadataKeys: keys, tensors: tensors, dataOffset: dataOffset)
}

// Smallest possible encodings, used to bound counts: a key/value is at least an empty key (8),
// a type (4) and a 1-byte value; a tensor info at least an empty name (8), n_dims (4),
// one dim (8), a type (4) and an offset (8).
private let minimumKeyValueBytes = 13
private let minimumTensorInfoBytes = 32
// Real files nest at most one level (arrays of arrays are rare); the limit only stops
// a crafted file from recursing the reader off its stack.
private let maximumArrayDepth = 8
private let maximumDims = 4  // GGML_MAX_DIMS

private func readValue(_ cursor: inout GGUFCursor, type raw: UInt32, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
    guard let type = GGUFValueType(rawValue: raw) else {
        throw .unknownValueType(key: key, type: raw, offset: cursor.offset - 4)
    }
    switch type {
    case .uint8: return .uint8(try cursor.read(UInt8.self, key))
    case .int8: return .int8(try cursor.read(Int8.self, key))
    case .uint16: return .uint16(try cursor.read(UInt16.self, key))
    case .int16: return .int16(try cursor.read(Int16.self, key))
    case .uint32: return .uint32(try cursor.read(UInt32.self, key))
    case .int32: return .int32(try cursor.read(Int32.self, key))
    case .uint64: return .uint64(try cursor.read(UInt64.self, key))
    case .int64: return .int64(try cursor.read(Int64.self, key))
    case .float32: return .float32(Float(bitPattern: try cursor.read(UInt32.self, key)))
    case .float64: return .float64(Double(bitPattern: try cursor.read(UInt64.self, key)))
    case .bool: return .bool(try cursor.read(UInt8.self, key) != 0)
    case .string: return .string(try cursor.readString(key))
    case .array:
        guard depth < maximumArrayDepth else { throw .arrayNestingTooDeep(key: key, depth: maximumArrayDepth) }
        let elementRaw = try cursor.read(UInt32.self, "element type of '\(key)'")
        guard let elementType = GGUFValueType(rawValue: elementRaw) else {
            throw .unknownValueType(key: key, type: elementRaw, offset: cursor.offset - 4)
        }
        let countOffset = cursor.offset
        let count = try cursor.read(UInt64.self, "length of '\(key)'")
        guard count <= UInt64(cursor.remaining / elementType.minimumByteCount) else {
            throw .arrayTooLong(key: key, count: count, offset: countOffset, remaining: cursor.remaining)
        }
        var elements: [GGUFValue] = []
        elements.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            elements.append(try readValue(&cursor, type: elementRaw, key: key, depth: depth + 1))
        }
        return .array(elements)
    }
}

private func readAlignment(_ metadata: [String: GGUFValue]) throws(GGUFError) -> Int {
    let key = "general.alignment"
    guard let value = metadata[key] else { return 32 }  // GGUF_DEFAULT_ALIGNMENT
    guard let alignment = value.int else { throw .wrongType(key: key, expected: "uint32", found: value.typeName) }
    guard alignment > 0, alignment & (alignment - 1) == 0 else { throw .invalidAlignment(alignment) }
    return alignment
}

private func readTensorInfo(_ cursor: inout GGUFCursor, alignment: Int) throws(GGUFError) -> GGUFTensorInfo {
    let name = try cursor.readString("tensor name")
    let nDims = try cursor.read(UInt32.self, "n_dims of '\(name)'")
    guard (1...UInt32(maximumDims)).contains(nDims) else {
        throw .invalidDims(name: name, dims: [], reason: "n_dims \(nDims) is not in 1...\(maximumDims)")
    }
    var rawDims: [UInt64] = []
    for i in 0..<Int(nDims) { rawDims.append(try cursor.read(UInt64.self, "dim \(i) of '\(name)'")) }
    let rawType = try cursor.read(UInt32.self, "type of '\(name)'")
    let rawOffset = try cursor.read(UInt64.self, "data offset of '\(name)'")

    guard let type = GGMLType(rawValue: rawType) else { throw .unsupportedTensorType(name: name, type: rawType) }
    var dims: [Int] = []
    var elementCount = 1
    for d in rawDims {
        guard d > 0, let di = Int(exactly: d) else {
            throw .invalidDims(name: name, dims: rawDims, reason: "every dim must be positive")
        }
        let (product, overflow) = elementCount.multipliedReportingOverflow(by: di)
        guard !overflow else { throw .invalidDims(name: name, dims: rawDims, reason: "element count overflows") }
        elementCount = product
        dims.append(di)
    }
    // Blocks never straddle rows in ggml, so the row length must be whole blocks.
    guard dims[0] % type.blockSize == 0 else {
        throw .invalidDims(name: name, dims: rawDims, reason: "row length is not a multiple of the \(type) block size \(type.blockSize)")
    }
    let (byteCount, overflow) = (elementCount / type.blockSize).multipliedReportingOverflow(by: type.blockByteCount)
    guard !overflow else { throw .invalidDims(name: name, dims: rawDims, reason: "byte count overflows") }
    let offset = Int(clamping: rawOffset)
    guard offset % alignment == 0 else { throw .misalignedTensor(name: name, offset: offset, alignment: alignment) }
    return GGUFTensorInfo(name: name, dims: dims, type: type, offset: offset,
                          elementCount: elementCount, byteCount: byteCount)
}
