#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The parts of PEFT's adapter_config.json that decide what the adapter computes. Options
// that would change the math in a way the LoRA side path does not reproduce are refused
// by name rather than ignored: a silently wrong adapter is worse than none.
struct PEFTConfig {
    var rank: Int
    var alpha: Float
    var useRSLoRA: Bool
    var targets: Set<LoRATarget>
    /// layers_to_transform; nil means every layer.
    var layers: Set<Int>?

    init(path: String, nLayers: Int) throws(AdapterError) {
        let bytes = try readFile(path)
        let json: [String: JSONValue]
        do {
            json = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch {
            throw .invalidConfig(path: path, reason: "not a JSON object")
        }
        func invalid(_ reason: String) -> AdapterError { .invalidConfig(path: path, reason: reason) }

        guard case .string(let peftType)? = json["peft_type"] else { throw invalid("peft_type must be a string") }
        guard peftType == "LORA" else { throw .unsupportedPEFTType(peftType) }
        for (key, reason) in unsupportedOptions {
            if let value = json[key], value.isActive { throw .unsupportedFeature(key: key, value: value.text, reason: reason) }
        }

        guard let rank = json["r"]?.int else { throw invalid("r must be an integer") }
        guard rank > 0 else { throw .invalidRank(rank) }
        guard case .number(let alpha)? = json["lora_alpha"], alpha.isFinite else { throw invalid("lora_alpha must be a number") }
        switch json["use_rslora"] ?? .null {
        case .null: useRSLoRA = false
        case .bool(let value): useRSLoRA = value
        default: throw invalid("use_rslora must be true or false")
        }
        self.rank = rank
        self.alpha = Float(alpha)
        targets = try parseTargets(json["target_modules"], invalid: invalid)
        layers = try parseLayers(json["layers_to_transform"], nLayers: nLayers, invalid: invalid)
    }
}

// Keys that must be absent, null, false, "none" or empty, and why.
private let unsupportedOptions: [(String, String)] = [
    ("use_dora", "DoRA rescales each output column by a learned magnitude, which the LoRA side path does not compute"),
    ("bias", "trained biases are not applied; train with bias=\"none\""),
    ("lora_bias", "a bias on lora_B is not applied"),
    ("modules_to_save", "fully trained copies of base modules would replace the shared, frozen base weights"),
    ("fan_in_fan_out", "transposed (Conv1D-style) weights do not occur in llama models"),
    ("rank_pattern", "per-module ranks are not supported; one r applies to every module"),
    ("alpha_pattern", "per-module alphas are not supported; one lora_alpha applies to every module"),
    ("layer_replication", "replicated layers change the model's depth"),
    ("target_parameters", "LoRA on raw parameters (not Linear modules) is not supported"),
    ("trainable_token_indices", "trained token embeddings are not applied"),
    ("alora_invocation_tokens", "activated LoRA (switched on by invocation tokens) is not supported"),
    ("exclude_modules", "excluding modules is not supported; list the modules to adapt in target_modules"),
    ("use_qalora", "QA-LoRA pools the input, which the LoRA side path does not do"),
]

private extension JSONValue {
    /// Whether a setting is switched on: anything but null, false, "none" or empty.
    var isActive: Bool {
        switch self {
        case .null, .bool(false), .string("none"): return false
        case .array(let items): return !items.isEmpty
        case .object(let fields): return !fields.isEmpty
        default: return true
        }
    }
}

// A list of module names, or "all-linear" (PEFT: every Linear but the output head, which in a
// llama model is these seven). Names may carry their submodule ("self_attn.q_proj"), as
// PEFT matches them as suffixes of the full module path.
private func parseTargets(_ value: JSONValue?, invalid: (String) -> AdapterError) throws(AdapterError) -> Set<LoRATarget> {
    switch value {
    case .string("all-linear")?:
        return Set(LoRATarget.allCases)
    case .string(let pattern)?:
        throw .unsupportedFeature(key: "target_modules", value: JSONValue.string(pattern).text,
                                  reason: "a regular expression is not supported; list module names or use \"all-linear\"")
    case .array(let items)?:
        var targets = Set<LoRATarget>()
        for item in items {
            guard case .string(let name) = item else { throw invalid("target_modules must hold strings") }
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard let target = LoRATarget(rawValue: String(parts.last!)),
                  parts.count == 1 || (parts.count == 2 && parts[0] == target.moduleGroup)
            else { throw .unknownTargetModule(name) }
            targets.insert(target)
        }
        guard !targets.isEmpty else { throw invalid("target_modules is empty") }
        return targets
    default:
        throw invalid("target_modules must be a list of module names or \"all-linear\"")
    }
}

private func parseLayers(_ value: JSONValue?, nLayers: Int, invalid: (String) -> AdapterError) throws(AdapterError) -> Set<Int>? {
    let items: [JSONValue]
    switch value {
    case nil, .null?: return nil
    case .number?: items = [value!]
    case .array(let list)?: items = list
    default: throw invalid("layers_to_transform must be an integer or a list of integers")
    }
    var layers = Set<Int>()
    for item in items {
        guard let layer = item.int else { throw invalid("layers_to_transform must be an integer or a list of integers") }
        guard layer >= 0 && layer < nLayers else { throw .layerOutOfRange(name: "layers_to_transform", layer: layer, nLayers: nLayers) }
        layers.insert(layer)
    }
    return layers
}
