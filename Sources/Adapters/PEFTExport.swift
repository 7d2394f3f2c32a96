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
        var projections: [LoRAProjection] = []
        for layer in 0..<shape.nLayers {
            for target in LoRATarget.allCases {
                guard let w = weights(layer: layer, target: target) else { continue }
                layers.insert(layer)
                projections.append(LoRAProjection(layer: layer, target: target, rank: w.rank, alpha: w.alpha))
                writer.add(name: PEFTKey(layer: layer, target: target, matrix: .a).name, shape: [w.rank, w.inDim],
                           floats: w.aRowMajor())
                var b = w.bRowMajor()
                if target.hasRotaryRowOrder {
                    let gguf = b
                    b.withUnsafeMutableBufferPointer { hf in
                        permuteRowsGGUFToHF(dst: hf.baseAddress!, src: gguf, rows: w.outDim, cols: w.rank, headDim: shape.headDim)
                    }
                }
                writer.add(name: PEFTKey(layer: layer, target: target, matrix: .b).name, shape: [w.outDim, w.rank], floats: b)
            }
        }
        let weightsPath = directory + "/adapter_model.safetensors"
        do {
            try writer.write(to: weightsPath)
        } catch {
            throw .cannotWrite(path: weightsPath, reason: error.description)
        }
        // Layers that no projection touches are left out, as PEFT's layers_to_transform does.
        let rank = PatternSummary(projections, value: \.rank)
        let alpha = PatternSummary(projections, value: \.alpha)
        let layerList: JSONValue = layers.count == shape.nLayers ? .null : .array(layers.sorted().map { .number(Double($0)) })
        let config: [String: JSONValue] = [
            "peft_type": .string("LORA"),
            "task_type": .string("CAUSAL_LM"),
            "base_model_name_or_path": baseModelName.map(JSONValue.string) ?? .null,
            "r": .number(Double(rank.common)),
            "lora_alpha": .number(Double(alpha.common)),
            "use_rslora": .bool(useRSLoRA),
            "target_modules": .array(LoRATarget.allCases.filter(targets.contains).map { .string($0.rawValue) }),
            "layers_to_transform": layerList,
            "bias": .string("none"),
            "fan_in_fan_out": .bool(false),
            "use_dora": .bool(false),
            "modules_to_save": .null,
            "rank_pattern": .object(rank.exceptions.mapValues { .number(Double($0)) }),
            "alpha_pattern": .object(alpha.exceptions.mapValues { .number(Double($0)) }),
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

// One of a projection's settings (rank or alpha) as PEFT's config states it: the most
// common value as the default, the others as pattern keys. A projection whose value
// every layer of the adapter shares gets one key ("q_proj"); otherwise each module gets
// its full name. Module names and projection names match only their own modules as
// PEFT's patterns ("(.*\.)?(key)" against the whole name), so no two keys overlap.
private struct PatternSummary<Value: Hashable & Comparable> {
    let common: Value
    let exceptions: [String: Value]

    init(_ projections: [LoRAProjection], value: (LoRAProjection) -> Value) {
        var counts: [Value: Int] = [:]
        for p in projections { counts[value(p), default: 0] += 1 }
        // Ties go to the smaller value, so the same adapter always writes the same config.
        let common = counts.max { ($0.value, $1.key) < ($1.value, $0.key) }!.key
        var exceptions: [String: Value] = [:]
        for target in LoRATarget.allCases {
            let values = projections.filter { $0.target == target }.map { (p: $0, value: value($0)) }
            guard values.contains(where: { $0.value != common }) else { continue }
            if let first = values.first, values.allSatisfy({ $0.value == first.value }) {
                exceptions[target.rawValue] = first.value
            } else {
                for (p, v) in values where v != common { exceptions[PEFTKey.moduleName(layer: p.layer, target: p.target)] = v }
            }
        }
        self.common = common
        self.exceptions = exceptions
    }
}
