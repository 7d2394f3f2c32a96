import Kernels
import ModelFormats

// Loads a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) and checks it
// against the base model before anything runs: every tensor must be the A or B of a
// projection the config targets, on a layer it transforms, with the base model's shape.
extension LoRAAdapter {
    public static func loadPEFT(directory: String, base: BaseModelShape,
                                precision: LoRAWeightPrecision = .f16) throws(AdapterError) -> LoRAAdapter {
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

        var found: [PEFTKey: (name: String, rank: Int, alpha: Float)] = [:]
        for name in file.tensorNames {
            let (key, rank, alpha) = try checkedKey(name, config: config, base: base)
            let shape = file.tensorInfo(name)!.shape
            let expected = key.matrix == .a ? [rank, base.inputDim(key.target)] : [base.outputDim(key.target), rank]
            guard shape == expected else {
                throw .tensorShapeMismatch(name: name, expected: expected, found: shape,
                                           hint: shapeHint(found: shape, expected: expected, matrix: key.matrix, rank: rank))
            }
            if let other = found[key] { throw .duplicateWeights("'\(other.name)' and '\(name)'") }
            found[key] = (name, rank, alpha)
        }

        var pairs: [(projection: LoRAProjection, a: String, b: String)] = []
        for (key, tensor) in found.sorted(by: { $0.value.name < $1.value.name }) {
            let partner = PEFTKey(layer: key.layer, target: key.target, matrix: key.matrix == .a ? .b : .a)
            guard let other = found[partner] else { throw .missingPair(present: tensor.name, missing: partner.name) }
            if key.matrix == .a {
                let projection = LoRAProjection(layer: key.layer, target: key.target, rank: tensor.rank, alpha: tensor.alpha)
                pairs.append((projection, tensor.name, other.name))
            }
        }
        // Values are read (and widened to f32) one projection at a time, so loading holds
        // one projection in f32 beside the stored weights, not the whole adapter.
        return try LoRAAdapter(shape: base, useRSLoRA: config.useRSLoRA, precision: precision,
                               projections: pairs.map(\.projection)) { i throws(AdapterError) in
            do throws(SafetensorsError) {
                return (try file.floats(pairs[i].a), try file.floats(pairs[i].b))
            } catch {
                throw .invalidWeights(path: weightsPath, error)
            }
        }
    }
}

private func checkedKey(_ name: String, config: PEFTConfig,
                        base: BaseModelShape) throws(AdapterError) -> (key: PEFTKey, rank: Int, alpha: Float) {
    guard let key = PEFTKey(name) else {
        throw .unexpectedTensor(name: name, reason: "not the lora_A or lora_B weight of a llama projection "
                                + "(expected e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)")
    }
    guard key.layer < base.nLayers else { throw .layerOutOfRange(name: name, layer: key.layer, nLayers: base.nLayers) }
    switch config.rule(layer: key.layer, target: key.target) {
    case .adapted(let rank, let alpha): return (key, rank, alpha)
    case .untouched(let reason): throw .unexpectedTensor(name: name, reason: reason)
    }
}

// A rank dimension that disagrees while the other matches points at the config's r (or
// its rank_pattern); anything else at a different base model.
private func shapeHint(found: [Int], expected: [Int], matrix: LoRAMatrix, rank: Int) -> String {
    let rankAxis = matrix == .a ? 0 : 1
    if found.count == 2 && found[1 - rankAxis] == expected[1 - rankAxis] {
        return "r in adapter_config.json (or its rank_pattern) gives this module rank \(rank) but the tensor has rank \(found[rankAxis])"
    }
    return "adapter trained for a different base model?"
}
