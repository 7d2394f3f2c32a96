#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The parts of PEFT's adapter_config.json that decide what the adapter computes, resolved
// to one rule per projection of the base model, as PEFT resolves them when it wraps the
// model's modules (PEFTModuleRules). Options that would change the math in a way the
// LoRA side path does not reproduce are refused by name rather than ignored: a silently
// wrong adapter is worse than none.
struct PEFTConfig {
    var useRSLoRA: Bool
    private let rules: PEFTModuleRules

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
        try checkInitialization(json["init_lora_weights"])

        guard let rank = json["r"]?.int else { throw invalid("r must be an integer") }
        guard rank > 0 else { throw .invalidRank(rank) }
        guard case .number(let alpha)? = json["lora_alpha"], alpha.isFinite else { throw invalid("lora_alpha must be a number") }
        switch json["use_rslora"] ?? .null {
        case .null: useRSLoRA = false
        case .bool(let value): useRSLoRA = value
        default: throw invalid("use_rslora must be true or false")
        }
        rules = try PEFTModuleRules(json, rank: rank, alpha: Float(alpha), nLayers: nLayers, invalid: invalid)
    }

    /// The rank and alpha of the projection, or why the config leaves it alone.
    func rule(layer: Int, target: LoRATarget) -> PEFTModuleRules.Rule {
        rules.rule(layer: layer, target: target)
    }
}

// Keys that must be absent, null, false, "none" or empty, and why.
private let unsupportedOptions: [(String, String)] = [
    ("use_dora", "DoRA rescales each output column by a learned magnitude, which the LoRA side path does not compute"),
    ("bias", "trained biases are not applied; train with bias=\"none\""),
    ("lora_bias", "a bias on lora_B is not applied"),
    ("modules_to_save", "fully trained copies of base modules would replace the shared, frozen base weights"),
    ("fan_in_fan_out", "transposed (Conv1D-style) weights do not occur in llama models"),
    ("layer_replication", "replicated layers change the model's depth"),
    ("target_parameters", "LoRA on raw parameters (not Linear modules) is not supported"),
    ("trainable_token_indices", "trained token embeddings are not applied"),
    ("alora_invocation_tokens", "activated LoRA (switched on by invocation tokens) is not supported"),
    ("use_qalora", "QA-LoRA pools the input, which the LoRA side path does not do"),
    // PEFT's other LoRA variants, each of which changes the layer's forward pass.
    ("velora_config", "the VeLoRA variant is not supported"),
    ("monteclora_config", "the MonteCLoRA variant is not supported"),
    ("use_bdlora", "the block-diagonal LoRA variant is not supported"),
    ("arrow_config", "Arrow routing between adapters is not supported"),
    ("kasa_config", "the KaSA variant is not supported"),
]

// init_lora_weights only matters once training is over when the initialisation changed
// the base weights too (PEFT subtracts the initial adapter from them) or selects a
// variant with its own forward pass. PEFT's save_pretrained with
// path_initial_model_for_weight_conversion turns such an adapter into a plain one and
// records init_lora_weights = true.
private func checkInitialization(_ value: JSONValue?) throws(AdapterError) {
    switch value {
    case nil, .null?, .bool?: return
    case .string(let name)? where ["gaussian", "eva", "orthogonal"].contains(name.lowercased()): return
    case .string(let name)? where name.lowercased() == "mica":
        throw .unsupportedFeature(key: "init_lora_weights", value: value!.text, reason: "the MiCA variant is not supported")
    default:
        throw .unsupportedFeature(key: "init_lora_weights", value: value!.text, reason: "this initialisation (PiSSA, "
            + "OLoRA, CorDA, LoftQ and LoRA-GA do this) also changed the base weights, which are shared and frozen here; "
            + "save the adapter with path_initial_model_for_weight_conversion to turn it into a plain LoRA")
    }
}

extension JSONValue {
    /// Whether a setting is switched on: anything but null, false, "none" or empty.
    var isActive: Bool {
        switch self {
        case .null, .bool(false), .string("none"), .string(""): return false
        case .array(let items): return !items.isEmpty
        case .object(let fields): return !fields.isEmpty
        default: return true
        }
    }
}
