// Tensor names as PEFT saves a LoRA on a llama model:
//   base_model.model.model.layers.{L}.self_attn.q_proj.lora_A.weight
//   base_model.model.model.layers.{L}.mlp.down_proj.lora_B.weight
// Also accepted: without the leading "base_model.model." (the bare model's state dict),
// and with the adapter name before "weight" ("lora_A.default.weight", as saved in memory).

enum LoRAMatrix: String {
    case a = "A", b = "B"
}

struct PEFTKey: Hashable {
    let layer: Int
    let target: LoRATarget
    let matrix: LoRAMatrix

    /// nil when `name` is not the A or B weight of a llama projection.
    init?(_ name: String) {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.starts(with: ["base_model", "model"]) { parts.removeFirst(2) }
        // model layers L group proj lora_X [adapterName] weight
        guard parts.count == 7 || parts.count == 8,
              parts[0] == "model", parts[1] == "layers", parts.last == "weight",
              parts[2].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let layer = Int(parts[2]),
              let target = LoRATarget(rawValue: parts[4]), parts[3] == target.moduleGroup,
              parts[5].hasPrefix("lora_"), let matrix = LoRAMatrix(rawValue: String(parts[5].dropFirst(5)))
        else { return nil }
        self.layer = layer
        self.target = target
        self.matrix = matrix
    }

    init(layer: Int, target: LoRATarget, matrix: LoRAMatrix) {
        self.layer = layer
        self.target = target
        self.matrix = matrix
    }

    /// The name PEFT's save_pretrained writes.
    var name: String {
        "base_model.model.\(Self.moduleName(layer: layer, target: target)).lora_\(matrix.rawValue).weight"
    }

    /// The projection's module name in the Hugging Face model, which PEFT's
    /// target_modules, exclude_modules and rank_pattern are matched against.
    static func moduleName(layer: Int, target: LoRATarget) -> String {
        "model.layers.\(layer).\(target.moduleGroup).\(target.rawValue)"
    }
}
