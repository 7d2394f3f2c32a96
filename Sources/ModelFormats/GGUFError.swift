// Everything that can be wrong with a GGUF file. Each case carries enough context
// (key or tensor name, offsets, sizes) to tell a truncated download from a bad writer.
public enum GGUFError: Error, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// `needed` bytes for `reading` did not fit at `offset` in a file of `fileSize` bytes.
    case truncated(reading: String, offset: Int, needed: Int, fileSize: Int)
    case badMagic([UInt8])
    case unsupportedVersion(UInt32)
    /// A tensor or key/value count that the remaining bytes cannot possibly hold.
    case countTooLarge(what: String, count: UInt64, offset: Int, remaining: Int)
    case stringTooLong(length: UInt64, offset: Int, remaining: Int)
    case arrayTooLong(key: String, count: UInt64, offset: Int, remaining: Int)
    case arrayNestingTooDeep(key: String, depth: Int)
    case unknownValueType(key: String, type: UInt32, offset: Int)
    case duplicateKey(String)
    case duplicateTensor(String)
    case invalidAlignment(Int)
    case unsupportedTensorType(name: String, type: UInt32)
    case invalidDims(name: String, dims: [UInt64], reason: String)
    case misalignedTensor(name: String, offset: Int, alignment: Int)
    case tensorOutOfBounds(name: String, offset: Int, byteCount: Int, fileSize: Int)
    case missingKey(String)
    case wrongType(key: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "GGUF: cannot open \(path): \(reason)"
        case .cannotWrite(let path, let reason):
            return "GGUF: cannot write \(path): \(reason)"
        case .truncated(let reading, let offset, let needed, let fileSize):
            return "GGUF: file truncated reading \(reading): need \(needed) bytes at offset \(offset), file has \(fileSize)"
        case .badMagic(let bytes):
            let hex = bytes.map { String($0, radix: 16) }.joined(separator: " ")
            return "GGUF: bad magic [\(hex)], expected \"GGUF\" [47 47 55 46]"
        case .unsupportedVersion(let v):
            return "GGUF: unsupported version \(v) (supported: 2, 3)"
        case .countTooLarge(let what, let count, let offset, let remaining):
            return "GGUF: \(what) \(count) at offset \(offset) cannot fit in the remaining \(remaining) bytes"
        case .stringTooLong(let length, let offset, let remaining):
            return "GGUF: string of length \(length) at offset \(offset) exceeds the remaining \(remaining) bytes"
        case .arrayTooLong(let key, let count, let offset, let remaining):
            return "GGUF: array '\(key)' of \(count) elements at offset \(offset) cannot fit in the remaining \(remaining) bytes"
        case .arrayNestingTooDeep(let key, let depth):
            return "GGUF: array '\(key)' nests deeper than \(depth) levels"
        case .unknownValueType(let key, let type, let offset):
            return "GGUF: key '\(key)' has unknown value type \(type) at offset \(offset)"
        case .duplicateKey(let key):
            return "GGUF: duplicate metadata key '\(key)'"
        case .duplicateTensor(let name):
            return "GGUF: duplicate tensor '\(name)'"
        case .invalidAlignment(let a):
            return "GGUF: general.alignment \(a) is not a positive power of two"
        case .unsupportedTensorType(let name, let type):
            return "GGUF: tensor '\(name)' has unsupported ggml type \(type) (supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0)"
        case .invalidDims(let name, let dims, let reason):
            return "GGUF: tensor '\(name)' has invalid dims \(dims): \(reason)"
        case .misalignedTensor(let name, let offset, let alignment):
            return "GGUF: tensor '\(name)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(let name, let offset, let byteCount, let fileSize):
            return "GGUF: tensor '\(name)' data [\(offset), +\(byteCount)) lies outside the file of \(fileSize) bytes"
        case .missingKey(let key):
            return "GGUF: missing metadata key '\(key)'"
        case .wrongType(let key, let expected, let found):
            return "GGUF: metadata key '\(key)' is \(found), expected \(expected)"
        }
    }
}
