#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Kernels

// A validated safetensors file held in memory (adapters are megabytes, so a copy is cheaper
// to reason about than a mapping). Immutable, hence safe to share.
public struct SafetensorsFile: Sendable {
    public let metadata: [String: String]
    /// Sorted, as Python's `safe_open(...).keys()` lists them.
    public let tensorNames: [String]

    private let tensors: [String: SafetensorsTensorInfo]
    private let bytes: [UInt8]
    private let dataStart: Int

    public init(path: String) throws(SafetensorsError) {
        try self.init(bytes: readWholeFile(path))
    }

    public init(bytes: [UInt8]) throws(SafetensorsError) {
        let layout = try parseSafetensors(bytes)
        metadata = layout.metadata
        tensors = layout.tensors
        tensorNames = layout.tensors.keys.sorted()
        dataStart = layout.dataStart
        self.bytes = bytes
    }

    public func tensorInfo(_ name: String) -> SafetensorsTensorInfo? {
        tensors[name]
    }

    /// The tensor's elements as f32, row-major in header shape order.
    public func floats(_ name: String) throws(SafetensorsError) -> [Float] {
        guard let info = tensors[name] else { throw .noSuchTensor(name) }
        let dtype = info.dtype
        guard [.f64, .f32, .f16, .bf16].contains(dtype) else {
            throw .notFloatingPoint(name: name, dtype: dtype.rawValue)
        }
        let count = info.elementCount
        guard count > 0 else { return [] }
        return bytes.withUnsafeBytes { raw in
            // The parser checked that [lowerBound, upperBound) lies inside the buffer.
            let src = raw.baseAddress! + dataStart + info.dataOffsets.lowerBound
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                let dst = out.baseAddress!
                switch dtype {
                case .f16: dequantizeRowF16(out: dst, src: src, count: count)
                case .bf16: dequantizeRowBF16(out: dst, src: src, count: count)
                case .f64:
                    for i in 0..<count {
                        dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 &* i, as: UInt64.self))))
                    }
                default:
                    for i in 0..<count {
                        dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)))
                    }
                }
                initialized = count
            }
        }
    }
}

private func readWholeFile(_ path: String) throws(SafetensorsError) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .cannotRead(path: path, reason: String(cString: strerror(errno))) }
    guard info.st_mode & S_IFMT == S_IFREG else { throw .cannotRead(path: path, reason: "not a regular file") }
    let size = Int(info.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    let failure = bytes.withUnsafeMutableBytes { buffer -> String? in
        var done = 0
        while done < size {
            let n = read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return String(cString: strerror(errno)) }
            if n == 0 { return "file shrank while reading" }
            done += n
        }
        return nil
    }
    if let failure { throw .cannotRead(path: path, reason: failure) }
    return bytes
}
