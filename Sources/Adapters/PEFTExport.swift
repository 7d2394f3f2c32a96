#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ModelFormats

// Writes the adapter as PEFT does (adapter_config.json + adapter_model.safetensors), with
// Q and K rows of B put back in Hugging Face order, so PEFT and other tools can load it.
// Tensors are written as f32 (the held halves widened exactly), as PEFT saves an fp32
// adapter, so any tool reads them without a dtype question.
extension LoRAAdapter {
    public func savePEFT(directory: String, baseModelName: String?) throws(AdapterError) {
        try makeDirectories(directory)
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt"]  // what PEFT's save_pretrained writes
        var layers = Set<Int>()
        for layer in 0..<shape.nLayers {
            for target in LoRATarget.allCases {
                guard let w = weights(layer: layer, target: target) else { continue }
                layers.insert(layer)
                writer.add(name: PEFTKey(layer: layer, target: target, matrix: .a).name, shape: [rank, w.inDim],
                           floats: w.aRowMajor())
                var b = w.bRowMajor()
                if target.hasRotaryRowOrder {
                    let gguf = b
                    b.withUnsafeMutableBufferPointer { hf in
                        permuteRowsGGUFToHF(dst: hf.baseAddress!, src: gguf, rows: w.outDim, cols: rank, headDim: shape.headDim)
                    }
                }
                writer.add(name: PEFTKey(layer: layer, target: target, matrix: .b).name, shape: [w.outDim, rank], floats: b)
            }
        }
        let weightsPath = directory + "/adapter_model.safetensors"
        do {
            try writer.write(to: weightsPath)
        } catch {
            throw .cannotWrite(path: weightsPath, reason: error.description)
        }
        // Layers that no projection touches are left out, as PEFT's layers_to_transform does.
        let layerList: JSONValue = layers.count == shape.nLayers ? .null : .array(layers.sorted().map { .number(Double($0)) })
        let config: [String: JSONValue] = [
            "peft_type": .string("LORA"),
            "task_type": .string("CAUSAL_LM"),
            "base_model_name_or_path": baseModelName.map(JSONValue.string) ?? .null,
            "r": .number(Double(rank)),
            "lora_alpha": .number(Double(alpha)),
            "use_rslora": .bool(useRSLoRA),
            "target_modules": .array(LoRATarget.allCases.filter(targets.contains).map { .string($0.rawValue) }),
            "layers_to_transform": layerList,
            "bias": .string("none"),
            "fan_in_fan_out": .bool(false),
            "use_dora": .bool(false),
            "modules_to_save": .null,
            "rank_pattern": .object([:]),
            "alpha_pattern": .object([:]),
            "lora_dropout": .number(0),
            "inference_mode": .bool(true),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do {
            json = try encoder.encode(config)
        } catch {
            throw .cannotWrite(path: directory + "/adapter_config.json", reason: "\(error)")
        }
        try writeFile(directory + "/adapter_config.json", Array(json) + [UInt8(ascii: "\n")])
    }
}
