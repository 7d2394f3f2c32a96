// Everything that can be wrong with a safetensors file. Each case names the tensor and the
// numbers involved, so a truncated download reads differently from a bad writer.
public enum SafetensorsError: Error, CustomStringConvertible, Sendable {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case truncatedHeaderLength(fileSize: Int)
    /// The header length claims more bytes than follow it.
    case headerTooLong(headerLength: UInt64, fileSize: Int)
    case invalidHeaderJSON(reason: String)
    case invalidTensorEntry(name: String, reason: String)
    /// A dtype this reader cannot size; the tensor's extent could not be checked.
    case unknownDType(name: String, dtype: String)
    case invalidShape(name: String, shape: [Int])
    case invalidOffsets(name: String, offsets: [Int], bufferSize: Int)
    case sizeMismatch(name: String, dtype: String, shape: [Int], expectedBytes: Int, foundBytes: Int)
    case overlappingTensors(String, String)
    case noSuchTensor(String)
    /// The tensor holds integers or booleans, not values that convert to f32.
    case notFloatingPoint(name: String, dtype: String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason):
            return "safetensors: cannot read \(path): \(reason)"
        case .cannotWrite(let path, let reason):
            return "safetensors: cannot write \(path): \(reason)"
        case .truncatedHeaderLength(let fileSize):
            return "safetensors: file of \(fileSize) bytes is too short for the 8-byte header length"
        case .headerTooLong(let headerLength, let fileSize):
            return "safetensors: header length \(headerLength) exceeds the \(fileSize)-byte file (truncated or not a safetensors file)"
        case .invalidHeaderJSON(let reason):
            return "safetensors: header is not valid JSON of the expected form: \(reason)"
        case .invalidTensorEntry(let name, let reason):
            return "safetensors: tensor '\(name)' has an invalid header entry: \(reason)"
        case .unknownDType(let name, let dtype):
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "safetensors: tensor '\(name)' has unsupported dtype '\(dtype)' (supported: \(known))"
        case .invalidShape(let name, let shape):
            return "safetensors: tensor '\(name)' has invalid shape \(shape) (negative dimension or element count overflow)"
        case .invalidOffsets(let name, let offsets, let bufferSize):
            return "safetensors: tensor '\(name)' has data_offsets \(offsets), which is not [begin, end] with 0 <= begin <= end <= \(bufferSize) (the data buffer size)"
        case .sizeMismatch(let name, let dtype, let shape, let expectedBytes, let foundBytes):
            return "safetensors: tensor '\(name)' (\(dtype) \(shape)) needs \(expectedBytes) bytes but its data_offsets span \(foundBytes)"
        case .overlappingTensors(let a, let b):
            return "safetensors: tensors '\(a)' and '\(b)' overlap in the data buffer"
        case .noSuchTensor(let name):
            return "safetensors: no tensor named '\(name)'"
        case .notFloatingPoint(let name, let dtype):
            return "safetensors: tensor '\(name)' has dtype \(dtype), which does not convert to f32 (supported: F64, F32, F16, BF16)"
        }
    }
}
