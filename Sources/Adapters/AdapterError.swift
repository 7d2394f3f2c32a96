import ModelFormats

// Everything that can make an adapter unusable. Messages name the file, key or tensor at
// fault and say what was expected, because the person reading them usually trained the
// adapter elsewhere and needs to know which setting to change.
public enum AdapterError: Error, CustomStringConvertible, Sendable {
    case invalidBaseShape(String)
    case missingFile(path: String, hint: String?)
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    /// adapter_config.json is not JSON, or a key is missing or of the wrong type.
    case invalidConfig(path: String, reason: String)
    case unsupportedPEFTType(String)
    /// A PEFT option whose effect the LoRA side path does not compute.
    case unsupportedFeature(key: String, value: String, reason: String)
    case invalidRank(Int)
    case invalidAlpha(layer: Int, target: LoRATarget, alpha: Float)
    case unknownTargetModule(String)
    case invalidWeights(path: String, SafetensorsError)
    /// A tensor that is not the A or B of a projection the config targets.
    case unexpectedTensor(name: String, reason: String)
    case duplicateWeights(String)
    case tensorShapeMismatch(name: String, expected: [Int], found: [Int], hint: String)
    /// An in-memory A or B (given to the initializer) of the wrong size.
    case elementCountMismatch(layer: Int, target: LoRATarget, matrix: String, expected: Int, found: Int)
    case layerOutOfRange(name: String, layer: Int, nLayers: Int)
    /// One half of an A/B pair without the other.
    case missingPair(present: String, missing: String)
    case noWeights
    case nonFiniteWeights(layer: Int, target: LoRATarget, matrix: String)

    public var description: String {
        switch self {
        case .invalidBaseShape(let reason):
            return "adapter: invalid base model shape: \(reason)"
        case .missingFile(let path, let hint):
            return "adapter: missing \(path)" + (hint.map { " (\($0))" } ?? "")
        case .cannotRead(let path, let reason):
            return "adapter: cannot read \(path): \(reason)"
        case .cannotWrite(let path, let reason):
            return "adapter: cannot write \(path): \(reason)"
        case .invalidConfig(let path, let reason):
            return "adapter: invalid \(path): \(reason)"
        case .unsupportedPEFTType(let type):
            return "adapter: peft_type '\(type)' is not supported (only LORA)"
        case .unsupportedFeature(let key, let value, let reason):
            return "adapter: unsupported \(key) = \(value): \(reason)"
        case .invalidRank(let r):
            return "adapter: rank r = \(r), must be positive"
        case .invalidAlpha(let layer, let target, let alpha):
            return "adapter: layer \(layer) \(target.rawValue) has lora_alpha \(alpha), must be finite"
        case .unknownTargetModule(let name):
            let known = LoRATarget.allCases.map(\.rawValue).joined(separator: ", ")
            return "adapter: target module '\(name)' names none of the model's projections (\(known), "
                + "optionally with their module path, e.g. self_attn.q_proj or model.layers.0.mlp.up_proj; or \"all-linear\" or a regular expression)"
        case .invalidWeights(let path, let error):
            return "adapter: invalid weights \(path): \(error)"
        case .unexpectedTensor(let name, let reason):
            return "adapter: unexpected tensor '\(name)': \(reason)"
        case .duplicateWeights(let what):
            return "adapter: weights for \(what) given twice"
        case .tensorShapeMismatch(let name, let expected, let found, let hint):
            return "adapter: tensor '\(name)' has shape \(found), expected \(expected) (hint: \(hint))"
        case .elementCountMismatch(let layer, let target, let matrix, let expected, let found):
            return "adapter: layer \(layer) \(target.rawValue) lora_\(matrix) has \(found) elements, expected \(expected)"
        case .layerOutOfRange(let name, let layer, let nLayers):
            return "adapter: \(name) refers to layer \(layer), but the base model has \(nLayers) layers (0..<\(nLayers)) (hint: adapter trained for a different base model?)"
        case .missingPair(let present, let missing):
            return "adapter: '\(present)' has no matching '\(missing)'"
        case .noWeights:
            return "adapter: no LoRA weights"
        case .nonFiniteWeights(let layer, let target, let matrix):
            return "adapter: layer \(layer) \(target.rawValue) lora_\(matrix) holds NaN or infinite values (hint: a diverged training run?)"
        }
    }
}
