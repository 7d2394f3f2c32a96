import ModelFormats

// Loads a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) and checks it
// against the base model before anything runs: every tensor must be the A or B of a
// projection the config targets, on a layer it transforms, with the base model's shape.
extension LoRAAdapter {
    public static func loadPEFT(directory: String, base: BaseModelShape) throws(AdapterError) -> LoRAAdapter {
        try base.validate()
        let configPath = directory + "/adapter_config.json"
        let weightsPath = directory + "/adapter_model.safetensors"
        guard fileExists(configPath) else { throw .missingFile(path: configPath, hint: nil) }
        let config = try PEFTConfig(path: configPath, nLayers: base.nLayers)
        guard fileExists(weightsPath) else {
            let pickle = fileExists(directory + "/adapter_model.bin")
            throw .missingFile(path: weightsPath, hint: pickle
                ? "adapter_model.bin (a pickle) is not read; save the adapter with safe_serialization=True" : nil)
        }
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: weightsPath)
        } catch {
            throw .invalidWeights(path: weightsPath, error)
        }

        var found: [PEFTKey: String] = [:]
        for name in file.tensorNames {
            let key = try checkedKey(name, config: config, base: base)
            let shape = file.tensorInfo(name)!.shape
            let expected = key.matrix == .a ? [config.rank, base.inputDim(key.target)] : [base.outputDim(key.target), config.rank]
            guard shape == expected else {
                throw .tensorShapeMismatch(name: name, expected: expected, found: shape,
                                           hint: shapeHint(found: shape, expected: expected, matrix: key.matrix, rank: config.rank))
            }
            if let other = found[key] { throw .duplicateWeights("'\(other)' and '\(name)'") }
            found[key] = name
        }

        var pairs: [(key: PEFTKey, a: String, b: String)] = []
        for (key, name) in found.sorted(by: { $0.value < $1.value }) {
            let partner = PEFTKey(layer: key.layer, target: key.target, matrix: key.matrix == .a ? .b : .a)
            guard let other = found[partner] else { throw .missingPair(present: name, missing: partner.name) }
            if key.matrix == .a { pairs.append((key, name, other)) }
        }
        // Values are read (and widened to f32) one projection at a time, so loading holds
        // one projection in f32 beside the halves, not the whole adapter.
        return try LoRAAdapter(shape: base, rank: config.rank, alpha: config.alpha, useRSLoRA: config.useRSLoRA,
                               projections: pairs.map { ($0.key.layer, $0.key.target) }) { i throws(AdapterError) in
            do throws(SafetensorsError) {
                return (try file.floats(pairs[i].a), try file.floats(pairs[i].b))
            } catch {
                throw .invalidWeights(path: weightsPath, error)
            }
        }
    }
}

private func checkedKey(_ name: String, config: PEFTConfig, base: BaseModelShape) throws(AdapterError) -> PEFTKey {
    guard let key = PEFTKey(name) else {
        throw .unexpectedTensor(name: name, reason: "not the lora_A or lora_B weight of a llama projection "
                                + "(expected e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)")
    }
    guard key.layer < base.nLayers else { throw .layerOutOfRange(name: name, layer: key.layer, nLayers: base.nLayers) }
    guard config.targets.contains(key.target) else {
        throw .unexpectedTensor(name: name, reason: "\(key.target.rawValue) is not in target_modules")
    }
    if let layers = config.layers, !layers.contains(key.layer) {
        throw .unexpectedTensor(name: name, reason: "layer \(key.layer) is not in layers_to_transform")
    }
    return key
}

// A rank dimension that disagrees while the other matches points at the config's r;
// anything else at a different base model.
private func shapeHint(found: [Int], expected: [Int], matrix: LoRAMatrix, rank: Int) -> String {
    let rankAxis = matrix == .a ? 0 : 1
    if found.count == 2 && found[1 - rankAxis] == expected[1 - rankAxis] {
        return "r in adapter_config.json is \(rank) but the tensor has rank \(found[rankAxis])"
    }
    return "adapter trained for a different base model?"
}
