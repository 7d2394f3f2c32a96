import Adapters
import Foundation
import ModelFormats
import Testing

// Shared by the PEFT suites: the reference adapter, a tiny base shape, and synthetic
// adapter folders built from a config dictionary and SafetensorsWriter tensors.

let fixtureDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/peft_adapter_r8").path

let smolLM2 = BaseModelShape(nLayers: 30, dim: 576, hiddenDim: 1536, nHeads: 9, nKVHeads: 3, headDim: 64)
// Small enough that synthetic adapters take microseconds; headDim 4 still has two rotary pairs.
let tiny = BaseModelShape(nLayers: 2, dim: 8, hiddenDim: 12, nHeads: 2, nKVHeads: 1, headDim: 4)

// A fresh folder under the temporary directory, removed when `body` returns.
func withTemporaryDirectory<T, E: Error>(_ body: (String) throws(E) -> T) throws(E) -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-adapter-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func values(_ count: Int, seed: Int) -> [Float] {
    (0..<count).map { Float(sin(Double($0 * 13 + seed * 101))) * 0.1 }
}

func peftName(_ layer: Int, _ target: LoRATarget, _ matrix: String) -> String {
    let group = [.gate, .up, .down].contains(target) ? "mlp" : "self_attn"
    return "base_model.model.model.layers.\(layer).\(group).\(target.rawValue).lora_\(matrix).weight"
}

func tinyConfig() -> [String: Any] { [
    "peft_type": "LORA", "r": 2, "lora_alpha": 4, "use_rslora": false, "bias": "none",
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "use_dora": false, "modules_to_save": NSNull(), "fan_in_fan_out": false, "rank_pattern": [String: Any](),
    "alpha_pattern": [String: Any](), "layers_to_transform": NSNull(),
] }

// PEFT-shaped tensors for `tiny`: every (layer, target) listed, A (r, in) and B (out, r),
// r given by `rank` (one value everywhere unless a test mixes them).
func tinyTensors(layers: [Int] = [0, 1], targets: [LoRATarget] = LoRATarget.allCases,
                 rank: (_ layer: Int, _ target: LoRATarget) -> Int = { _, _ in 2 }) -> SafetensorsWriter {
    var writer = SafetensorsWriter()
    writer.metadata = ["format": "pt"]
    for layer in layers {
        for (t, target) in targets.enumerated() {
            let (r, inDim, outDim) = (rank(layer, target), tiny.inputDim(target), tiny.outputDim(target))
            writer.add(name: peftName(layer, target, "A"), shape: [r, inDim], floats: values(r * inDim, seed: layer * 20 + t))
            writer.add(name: peftName(layer, target, "B"), shape: [outDim, r], floats: values(outDim * r, seed: layer * 20 + t + 10))
        }
    }
    return writer
}

func writeFolder(_ directory: String, config: [String: Any]?, weights: [UInt8]?) {
    if let config {
        let json = try! JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        try! json.write(to: URL(fileURLWithPath: directory + "/adapter_config.json"))
    }
    if let weights {
        try! Data(weights).write(to: URL(fileURLWithPath: directory + "/adapter_model.safetensors"))
    }
}

// Loads a synthetic folder built from `tinyConfig` with `changes` applied.
func loadTiny(_ changes: [String: Any] = [:], weights: SafetensorsWriter = tinyTensors()) throws(AdapterError) -> LoRAAdapter {
    try withTemporaryDirectory { directory throws(AdapterError) in
        writeFolder(directory, config: tinyConfig().merging(changes) { $1 }, weights: weights.serialize())
        return try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
    }
}

func loadError(_ load: () throws(AdapterError) -> LoRAAdapter) -> AdapterError? {
    do {
        _ = try load()
        return nil
    } catch {
        return error
    }
}

/// The projection's alpha / rank (or alpha / sqrt(rank)), without the power-of-two factors.
func loraScale(_ w: LoRAWeights) -> Float {
    w.scale / (w.aFactor * w.bFactor)
}

/// Whether `held` is `original` rounded to 11 significant bits (a half's precision,
/// kept across the range by the power-of-two scaling): within 2⁻¹¹ relative.
func isHalfRounding(_ held: [Float], of original: [Float]) -> Bool {
    held.count == original.count && zip(held, original).allSatisfy { abs($0 - $1) <= abs($1) * 0x1p-11 }
}

// GGUF row order written straight from llama.cpp's converter,
// w.reshape(nHeads, 2, headDim/2, cols).swapaxes(1, 2): GGUF row h·hd + 2i + j = HF row h·hd + j·hd/2 + i.
func ggufOrder(_ hf: [Float], heads: Int, headDim: Int, cols: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: hf.count)
    for h in 0..<heads {
        for i in 0..<headDim / 2 {
            for j in 0..<2 {
                let (g, s) = (h * headDim + 2 * i + j, h * headDim + j * headDim / 2 + i)
                out[g * cols..<(g + 1) * cols] = hf[s * cols..<(s + 1) * cols]
            }
        }
    }
    return out
}


/// The tensors of every writer in one.
func combined(_ parts: SafetensorsWriter...) -> SafetensorsWriter {
    var writer = SafetensorsWriter()
    writer.metadata = ["format": "pt"]
    for part in parts {
        let file = try! SafetensorsFile(bytes: part.serialize())
        for name in file.tensorNames { writer.add(name: name, shape: file.tensorInfo(name)!.shape, floats: try! file.floats(name)) }
    }
    return writer
}
