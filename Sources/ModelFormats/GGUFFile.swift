#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

// A parsed GGUF file. Tensor data is never copied: the file is mapped read-only for the
// object's life, and `data(for:)` points into the mapping (llama2.c's mmapped weights).
// Immutable after init, hence safe to share across threads.
public final class GGUFFile: @unchecked Sendable {
    public let version: Int
    /// general.alignment, or 32 when the key is absent.
    public let alignment: Int
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute file offset of the data section; each tensor's `offset` is relative to it.
    public let dataOffset: Int
    public let fileSize: Int

    private let base: UnsafeRawPointer
    private let isMapped: Bool
    private let tensorIndex: [String: Int]

    /// Maps the file at `path` (MAP_PRIVATE, PROT_READ) and parses its header.
    public convenience init(path: String) throws(GGUFError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: lastErrorMessage()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: lastErrorMessage()) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        // mmap rejects a zero length; an empty file is simply too short for the magic.
        guard size > 0 else { throw .truncated(reading: "magic", offset: 0, needed: 4, fileSize: 0) }
        let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapping, mapping != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            throw .cannotOpen(path: path, reason: "mmap: \(lastErrorMessage())")
        }
        let layout: GGUFLayout
        do throws(GGUFError) {
            layout = try parseGGUF(base: mapping, size: size)
        } catch {
            munmap(mapping, size)
            throw error
        }
        self.init(layout: layout, base: mapping, size: size, isMapped: true)
    }

    /// Parses a private copy of `bytes`, so tests can build files in memory.
    public convenience init(bytes: [UInt8]) throws(GGUFError) {
        // 64-byte alignment so that tensor data sits as aligned as it would in a page-aligned mapping.
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: copy, count: bytes.count).copyMemory(from: $0) }
        let layout: GGUFLayout
        do throws(GGUFError) {
            layout = try parseGGUF(base: copy, size: bytes.count)
        } catch {
            copy.deallocate()
            throw error
        }
        self.init(layout: layout, base: copy, size: bytes.count, isMapped: false)
    }

    private init(layout: GGUFLayout, base: UnsafeRawPointer, size: Int, isMapped: Bool) {
        version = layout.version
        alignment = layout.alignment
        metadata = layout.metadata
        metadataKeys = layout.metadataKeys
        tensors = layout.tensors
        dataOffset = layout.dataOffset
        fileSize = size
        self.base = base
        self.isMapped = isMapped
        tensorIndex = Dictionary(uniqueKeysWithValues: layout.tensors.enumerated().map { ($1.name, $0) })
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
        } else {
            base.deallocate()
        }
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's first byte inside the mapping; valid while this object is alive.
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawPointer {
        precondition(dataOffset + tensor.offset + tensor.byteCount <= fileSize,
                     "tensor '\(tensor.name)' does not belong to this file")
        return base + dataOffset + tensor.offset
    }

    /// The whole tensor as f32 in storage order (dims[0] fastest).
    public func dequantize(_ tensor: GGUFTensorInfo) -> [Float] {
        let src = data(for: tensor)
        return [Float](unsafeUninitializedCapacity: tensor.elementCount) { out, initialized in
            dequantizeRow(type: tensor.type, out: out.baseAddress!, src: src, count: tensor.elementCount)
            initialized = tensor.elementCount
        }
    }

    public func requireInt(_ key: String) throws(GGUFError) -> Int {
        try require(key, as: "integer", \.int)
    }

    public func requireFloat(_ key: String) throws(GGUFError) -> Float {
        try require(key, as: "number", \.float)
    }

    public func requireString(_ key: String) throws(GGUFError) -> String {
        try require(key, as: "string", \.string)
    }

    private func require<T>(_ key: String, as expected: String, _ convert: (GGUFValue) -> T?) throws(GGUFError) -> T {
        guard let value = metadata[key] else { throw .missingKey(key) }
        guard let converted = convert(value) else {
            throw .wrongType(key: key, expected: expected, found: value.typeName)
        }
        return converted
    }
}

private func lastErrorMessage() -> String {
    String(cString: strerror(errno))
}
