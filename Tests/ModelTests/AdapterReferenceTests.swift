import Adapters
import Foundation
import Model
import ModelFormats
import Testing

/// The forward pass with a PEFT adapter against PEFT's own fp32 logits: checks the
/// safetensors import, the q/k row permutation, the scale and the side path.
@Suite struct AdapterReferenceTests {
    @Test func peftAdapterLogitsMatchReference() throws {
        // Given the reference adapter (r=8, alpha=16, all seven projections)
        let shared = try SharedModel.get()
        let adapter = try LoRAAdapter.loadPEFT(directory: Fixtures.url("peft_adapter_r8").path,
                                               base: shared.model.adapterShape)
        let reference = try Fixtures.json("peft_adapter_r8/logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("peft_adapter_r8/logits_fp32_last_position_f32le.bin")
        // When the prompt runs with the adapter in one chunk (gemm path) and token by
        // token (rowwise path)
        for chunk in [ids.count, 1] {
            let logits = shared.logits(tokens: ids, chunk: chunk, adapter: adapter).last!
            // Then the last position is within 1e-2 of PEFT's, with the same top-10 order
            let maxDiff = zip(logits, expected).map { abs($0 - $1) }.max()!
            #expect(maxDiff < 1e-2, "chunk \(chunk): max abs logit difference \(maxDiff)")
            let top = reference["last_position_top10_with_adapter"] as! [String: Any]
            let order = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10)
            #expect(Array(order) == top["ids"] as! [Int])
        }
    }

    @Test func int8AdapterWeightsStayCloseToTheReference() throws {
        // Given the reference adapter held as int8 (one scale per rank of A and of Bᵀ)
        let shared = try SharedModel.get()
        let directory = Fixtures.url("peft_adapter_r8").path
        let int8 = try LoRAAdapter.loadPEFT(directory: directory, base: shared.model.adapterShape, precision: .int8)
        #expect(int8.precision == .int8)
        let halves = try LoRAAdapter.loadPEFT(directory: directory, base: shared.model.adapterShape)
        #expect(int8.byteCount * 10 < halves.byteCount * 6, "int8 \(int8.byteCount) bytes, halves \(halves.byteCount)")
        let reference = try Fixtures.json("peft_adapter_r8/logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("peft_adapter_r8/logits_fp32_last_position_f32le.bin")
        let base = shared.logits(tokens: ids, adapter: nil).last!
        let adapterEffect = zip(base, expected).map { abs($0 - $1) }.max()!
        // When the prompt runs in one chunk (gemm path) and token by token (rowwise path)
        for chunk in [ids.count, 1] {
            let logits = shared.logits(tokens: ids, chunk: chunk, adapter: int8).last!
            // Then the last position differs from PEFT's by under 1% of what the adapter
            // changes (0.107 against 27.8 measured; halves: 5.1e-3), with the same top
            // token and the same top 10 (two near-tied neighbours there may swap)
            let maxDiff = zip(logits, expected).map { abs($0 - $1) }.max()!
            #expect(maxDiff < adapterEffect / 100, "chunk \(chunk): max abs logit difference \(maxDiff), adapter effect \(adapterEffect)")
            let top = reference["last_position_top10_with_adapter"] as! [String: Any]
            let order = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10)
            let referenceOrder = top["ids"] as! [Int]
            #expect(order.first == referenceOrder.first && Set(order) == Set(referenceOrder))
        }
    }

    @Test func perModuleRanksAndAlphasOnTheRealModel() throws {
        // Given the reference adapter rewritten with q_proj at rank 12 everywhere and layer
        // 5's down_proj at rank 10, the extra rank rows zero, and alpha_pattern keeping
        // their scale at 2 (24 / 12, 20 / 10): the same function, stated with patterns
        let shared = try SharedModel.get()
        let source = Fixtures.url("peft_adapter_r8")
        let file = try SafetensorsFile(path: source.appendingPathComponent("adapter_model.safetensors").path)
        func padRank(_ name: String) -> Int? {
            name.contains(".q_proj.") ? 12 : (name.contains("layers.5.mlp.down_proj.") ? 10 : nil)
        }
        var writer = SafetensorsWriter()
        for name in file.tensorNames {
            let shape = file.tensorInfo(name)!.shape, values = try file.floats(name)
            guard let rank = padRank(name) else {
                writer.add(name: name, shape: shape, floats: values)
                continue
            }
            if name.contains("lora_A") {  // (8, in) → (rank, in): zero rows below
                writer.add(name: name, shape: [rank, shape[1]], floats: values + [Float](repeating: 0, count: (rank - 8) * shape[1]))
            } else {  // (out, 8) → (out, rank): zero columns to the right
                var padded = [Float](repeating: 0, count: shape[0] * rank)
                for row in 0..<shape[0] {
                    padded[row * rank..<row * rank + 8] = values[row * 8..<row * 8 + 8]
                }
                writer.add(name: name, shape: [shape[0], rank], floats: padded)
            }
        }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        config["rank_pattern"] = ["q_proj": 12, "model.layers.5.mlp.down_proj": 10]
        config["alpha_pattern"] = ["q_proj": 24, "model.layers.5.mlp.down_proj": 20]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("graft-patterns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try writer.write(to: directory.appendingPathComponent("adapter_model.safetensors").path)
        func load(_ config: [String: Any]) throws -> LoRAAdapter {
            try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("adapter_config.json"))
            return try LoRAAdapter.loadPEFT(directory: directory.path, base: shared.model.adapterShape)
        }
        let patterned = try load(config)
        #expect(patterned.maxRank == 12 && patterned.weights(layer: 5, target: .down)!.rank == 10)
        #expect(patterned.weights(layer: 4, target: .down)!.rank == 8)

        // Then its logits are PEFT's reference logits, and the original adapter's
        let reference = try Fixtures.json("peft_adapter_r8/logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("peft_adapter_r8/logits_fp32_last_position_f32le.bin")
        let original = try LoRAAdapter.loadPEFT(directory: source.path, base: shared.model.adapterShape)
        let plain = shared.logits(tokens: ids, adapter: original).last!
        let logits = shared.logits(tokens: ids, adapter: patterned).last!
        let toReference = zip(logits, expected).map { abs($0 - $1) }.max()!
        let toOriginal = zip(logits, plain).map { abs($0 - $1) }.max()!
        #expect(toReference < 1e-2, "max abs difference to PEFT's logits \(toReference)")
        #expect(toOriginal < 1e-4, "max abs difference to the unpadded adapter \(toOriginal)")

        // And without alpha_pattern the padded modules scale by 16/12 and 16/10 instead:
        // the logits move, so the test above does see the patterns
        config["alpha_pattern"] = [String: Any]()
        let unscaled = shared.logits(tokens: ids, adapter: try load(config)).last!
        let moved = zip(unscaled, plain).map { abs($0 - $1) }.max()!
        #expect(moved > 1e-2, "dropping alpha_pattern moved the logits by only \(moved)")
    }
}
