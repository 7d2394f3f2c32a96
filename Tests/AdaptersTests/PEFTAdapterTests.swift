import Adapters
import Kernels
import Foundation
import ModelFormats
import Testing

@Suite struct PEFTAdapterTests {
    @Test func loadsTheReferenceAdapter() throws {
        // Given the PEFT adapter trained for SmolLM2-135M (r 8, alpha 16, all seven projections)
        let adapter = try LoRAAdapter.loadPEFT(directory: fixtureDirectory, base: smolLM2)

        // Then its settings and every layer's views have the base model's shapes
        #expect(adapter.maxRank == 8 && !adapter.useRSLoRA)
        #expect(adapter.targets == Set(LoRATarget.allCases))
        #expect(adapter.shape == smolLM2)
        for layer in 0..<30 {
            for target in LoRATarget.allCases {
                let w = try #require(adapter.weights(layer: layer, target: target))
                #expect(w.rank == 8 && w.inDim == smolLM2.inputDim(target) && w.outDim == smolLM2.outputDim(target))
                #expect(w.alpha == 16 && loraScale(w) == 2)
            }
        }
        // One allocation holds the file's f32 data as halves (every matrix is a multiple of 64 bytes).
        #expect(adapter.byteCount == 9_768_960 / 2)
    }

    @Test func qAndKRowsOfBArePermutedIntoGGUFOrder() throws {
        // Given the adapter and its HF tensors read directly
        let adapter = try LoRAAdapter.loadPEFT(directory: fixtureDirectory, base: smolLM2)
        let file = try SafetensorsFile(path: fixtureDirectory + "/adapter_model.safetensors")

        // Then B of q (9 heads) and k (3 KV heads) is the converter's permutation of the HF rows
        let q = try #require(adapter.weights(layer: 0, target: .q))
        let qHF = try file.floats(peftName(0, .q, "B"))
        #expect(isHalfRounding(q.bRowMajor(), of: ggufOrder(qHF, heads: 9, headDim: 64, cols: 8)))
        #expect(!isHalfRounding(q.bRowMajor(), of: qHF))
        let k = try #require(adapter.weights(layer: 29, target: .k))
        #expect(isHalfRounding(k.bRowMajor(), of: ggufOrder(try file.floats(peftName(29, .k, "B")), heads: 3, headDim: 64, cols: 8)))

        // And A of q, and B of every other projection, are in file order (rounded to halves)
        #expect(isHalfRounding(q.aRowMajor(), of: try file.floats(peftName(0, .q, "A"))))
        for target in [LoRATarget.v, .o, .gate, .up, .down] {
            let w = try #require(adapter.weights(layer: 7, target: target))
            #expect(isHalfRounding(w.bRowMajor(), of: try file.floats(peftName(7, target, "B"))), "\(target)")
        }
    }

    @Test func exportThenImportIsIdentical() throws {
        let adapter = try LoRAAdapter.loadPEFT(directory: fixtureDirectory, base: smolLM2)
        try withTemporaryDirectory { directory in
            // When the adapter is saved in PEFT layout (into a folder that does not exist yet)
            let out = directory + "/exported/v1"
            try adapter.savePEFT(directory: out, baseModelName: "HuggingFaceTB/SmolLM2-135M-Instruct")

            // Then the weights file has PEFT's tensors, in f32 as PEFT wrote them, holding the
            // values rounded to halves (inverse permutation included)
            let (a, b) = (try SafetensorsFile(path: out + "/adapter_model.safetensors"),
                          try SafetensorsFile(path: fixtureDirectory + "/adapter_model.safetensors"))
            #expect(a.tensorNames == b.tensorNames)
            for name in a.tensorNames {
                #expect(a.tensorInfo(name)!.dtype == .f32 && a.tensorInfo(name)!.shape == b.tensorInfo(name)!.shape)
                #expect(isHalfRounding(try a.floats(name), of: try b.floats(name)), "\(name)")
            }

            // And the config carries what PEFT needs
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as! [String: Any]
            #expect(config["peft_type"] as? String == "LORA" && config["r"] as? Int == 8 && config["lora_alpha"] as? Int == 16)
            #expect(config["use_rslora"] as? Bool == false && config["bias"] as? String == "none")
            #expect(Set(config["target_modules"] as! [String]) == Set(LoRATarget.allCases.map(\.rawValue)))
            #expect(config["base_model_name_or_path"] as? String == "HuggingFaceTB/SmolLM2-135M-Instruct")
            #expect(config["layers_to_transform"] is NSNull)

            // And importing the export gives the same adapter
            let again = try LoRAAdapter.loadPEFT(directory: out, base: smolLM2)
            #expect(again.maxRank == adapter.maxRank && again.useRSLoRA == adapter.useRSLoRA)
            #expect(again.targets == adapter.targets && again.byteCount == adapter.byteCount)
            for layer in 0..<30 {
                for target in LoRATarget.allCases {
                    let (x, y) = (adapter.weights(layer: layer, target: target)!, again.weights(layer: layer, target: target)!)
                    #expect(x.aRowMajor() == y.aRowMajor() && x.bRowMajor() == y.bRowMajor())
                    #expect(x.rank == y.rank && x.alpha == y.alpha && loraScale(x) == loraScale(y))
                }
            }

            // And exporting that again writes the same bytes: export and import lose nothing more
            let second = directory + "/exported/v2"
            try again.savePEFT(directory: second, baseModelName: "HuggingFaceTB/SmolLM2-135M-Instruct")
            #expect(try Data(contentsOf: URL(fileURLWithPath: second + "/adapter_model.safetensors"))
                    == Data(contentsOf: URL(fileURLWithPath: out + "/adapter_model.safetensors")))
        }
    }

    @Test func aDifferentBaseModelIsRefused() {
        // Given the SmolLM2 adapter and a base with dim 512
        var other = smolLM2
        other.dim = 512
        let error = loadError { () throws(AdapterError) in try LoRAAdapter.loadPEFT(directory: fixtureDirectory, base: other) }

        // Then the shape error names the tensor, both shapes and the likely cause
        guard case .tensorShapeMismatch(let name, let expected, let found, _)? = error else {
            Issue.record("expected a shape mismatch, got \(String(describing: error))")
            return
        }
        #expect(name.hasPrefix("base_model.model.model.layers.") && expected != found)
        #expect(error!.description.contains("adapter trained for a different base model?"))

        // And fewer layers than the adapter has is refused too
        var shallow = smolLM2
        shallow.nLayers = 20
        let layerError = loadError { () throws(AdapterError) in try LoRAAdapter.loadPEFT(directory: fixtureDirectory, base: shallow) }
        guard case .layerOutOfRange(_, let layer, 20)? = layerError else {
            Issue.record("expected a layer error, got \(String(describing: layerError))")
            return
        }
        #expect(layer >= 20)
    }

    @Test func brokenFoldersAreRefusedWithClearErrors() throws {
        // Missing files
        let noConfig = loadError { () throws(AdapterError) in
            try withTemporaryDirectory { directory throws(AdapterError) in
                writeFolder(directory, config: nil, weights: tinyTensors().serialize())
                return try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
            }
        }
        guard case .missingFile(let path, _)? = noConfig else { Issue.record("got \(String(describing: noConfig))"); return }
        #expect(path.hasSuffix("/adapter_config.json"))
        let noWeights = loadError { () throws(AdapterError) in
            try withTemporaryDirectory { directory throws(AdapterError) in
                writeFolder(directory, config: tinyConfig(), weights: nil)
                return try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
            }
        }
        guard case .missingFile(let weightsPath, _)? = noWeights else { Issue.record("got \(String(describing: noWeights))"); return }
        #expect(weightsPath.hasSuffix("/adapter_model.safetensors"))

        // A corrupt weights file: truncated, and garbage
        let bytes = tinyTensors().serialize()
        for corrupt in [Array(bytes.dropLast(3)), Array(bytes.prefix(20)), [UInt8](repeating: 0xAB, count: 64)] {
            let error = loadError { () throws(AdapterError) in
                try withTemporaryDirectory { directory throws(AdapterError) in
                    writeFolder(directory, config: tinyConfig(), weights: corrupt)
                    return try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
                }
            }
            guard case .invalidWeights? = error else { Issue.record("got \(String(describing: error))"); continue }
        }

        // A config that is not JSON
        let notJSON = loadError { () throws(AdapterError) in
            try withTemporaryDirectory { directory throws(AdapterError) in
                writeFolder(directory, config: nil, weights: bytes)
                try! Data("{\"r\": 8,".utf8).write(to: URL(fileURLWithPath: directory + "/adapter_config.json"))
                return try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
            }
        }
        guard case .invalidConfig? = notJSON else { Issue.record("got \(String(describing: notJSON))"); return }
    }

    @Test func unsupportedConfigsAreRefusedByName() {
        let unsupported: [(String, Any)] = [
            ("use_dora", true), ("bias", "all"), ("modules_to_save", ["lm_head"]), ("fan_in_fan_out", true),
            ("velora_config", ["rank": 4]), ("use_bdlora", ["blocks": 2]), ("kasa_config", ["k": 1]),
            ("init_lora_weights", "pissa"), ("init_lora_weights", "olora"), ("init_lora_weights", "mica"),
            ("layers_pattern", "blocks"),
        ]
        for (key, value) in unsupported {
            let error = loadError { () throws(AdapterError) in try loadTiny([key: value]) }
            guard case .unsupportedFeature(let named, _, _)? = error else {
                Issue.record("\(key): got \(String(describing: error))")
                continue
            }
            #expect(named == key && error!.description.contains(key))
        }

        let ia3 = loadError { () throws(AdapterError) in try loadTiny(["peft_type": "IA3"]) }
        guard case .unsupportedPEFTType("IA3")? = ia3 else { Issue.record("got \(String(describing: ia3))"); return }
        let zeroRank = loadError { () throws(AdapterError) in try loadTiny(["r": 0]) }
        guard case .invalidRank(0)? = zeroRank else { Issue.record("got \(String(describing: zeroRank))"); return }
        let unknown = loadError { () throws(AdapterError) in try loadTiny(["target_modules": ["q_proj", "lm_head"]]) }
        guard case .unknownTargetModule("lm_head")? = unknown else { Issue.record("got \(String(describing: unknown))"); return }
        let badLayer = loadError { () throws(AdapterError) in try loadTiny(["layers_to_transform": [0, 5]]) }
        guard case .layerOutOfRange("layers_to_transform", 5, 2)? = badLayer else { Issue.record("got \(String(describing: badLayer))"); return }
    }

    @Test func weightsThatDisagreeWithTheConfigAreRefused() {
        // r 4 in the config, rank-2 tensors: the hint points at r, not at the base model
        let rank = loadError { () throws(AdapterError) in try loadTiny(["r": 4]) }
        guard case .tensorShapeMismatch(_, let expected, let found, let hint)? = rank else { Issue.record("got \(String(describing: rank))"); return }
        #expect(expected.contains(4) && found.contains(2) && hint.contains("r in adapter_config.json"))

        // A tensor for a projection the config does not target
        let extra = loadError { () throws(AdapterError) in try loadTiny(["target_modules": ["q_proj", "v_proj"]]) }
        guard case .unexpectedTensor(_, let reason)? = extra else { Issue.record("got \(String(describing: extra))"); return }
        #expect(reason.contains("target_modules"))

        // A without B
        var lonely = tinyTensors(layers: [0], targets: [.q])
        lonely.add(name: peftName(1, .v, "A"), shape: [2, 8], floats: values(16, seed: 3))
        let unpaired = loadError { () throws(AdapterError) in try loadTiny(weights: lonely) }
        guard case .missingPair(let present, let missing)? = unpaired else { Issue.record("got \(String(describing: unpaired))"); return }
        #expect(present == peftName(1, .v, "A") && missing == peftName(1, .v, "B"))

        // A tensor that is not a LoRA weight at all
        var strange = tinyTensors()
        strange.add(name: "base_model.model.lm_head.lora_A.weight", shape: [2, 8], floats: values(16, seed: 4))
        let odd = loadError { () throws(AdapterError) in try loadTiny(weights: strange) }
        guard case .unexpectedTensor("base_model.model.lm_head.lora_A.weight", _)? = odd else { Issue.record("got \(String(describing: odd))"); return }
    }

    @Test func rsLoRAScalesByTheSquareRootOfTheRank() throws {
        #expect(loraScale(try loadTiny().weights(layer: 0, target: .q)!) == 2)  // 4 / 2
        let rs = try loadTiny(["use_rslora": true, "lora_alpha": 6])
        #expect(loraScale(rs.weights(layer: 1, target: .down)!) == 6 / Float(2).squareRoot() && rs.useRSLoRA)
        let direct = try LoRAAdapter(shape: tiny, rank: 4, alpha: 16, useRSLoRA: true,
                                     tensors: [(0, .v, values(4 * 8, seed: 1), values(4 * 4, seed: 2))])
        #expect(loraScale(direct.weights(layer: 0, target: .v)!) == 8 && direct.useRSLoRA)
    }

    @Test func untouchedProjectionsAndLayersHaveNoWeights() throws {
        // Given an adapter on q and v only
        let qv = try loadTiny(["target_modules": ["self_attn.q_proj", "v_proj"]], weights: tinyTensors(targets: [.q, .v]))
        #expect(qv.targets == [.q, .v])
        for layer in 0..<2 {
            for target in LoRATarget.allCases {
                #expect((qv.weights(layer: layer, target: target) != nil) == [.q, .v].contains(target))
            }
        }

        // Given layers_to_transform = 1 (as an integer) and weights for layer 1 only
        let one = try loadTiny(["layers_to_transform": 1], weights: tinyTensors(layers: [1]))
        #expect(one.weights(layer: 0, target: .q) == nil && one.weights(layer: 1, target: .q) != nil)
        // A layer-0 tensor under layers_to_transform [1] is not silently dropped
        let outside = loadError { () throws(AdapterError) in try loadTiny(["layers_to_transform": [1]]) }
        guard case .unexpectedTensor(_, let reason)? = outside else { Issue.record("got \(String(describing: outside))"); return }
        #expect(reason.contains("layers_to_transform"))

        // And a partial adapter exports layers_to_transform and reloads the same
        try withTemporaryDirectory { directory in
            try one.savePEFT(directory: directory, baseModelName: nil)
            let again = try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
            #expect(again.weights(layer: 0, target: .down) == nil)
            let (x, y) = (one.weights(layer: 1, target: .k)!, again.weights(layer: 1, target: .k)!)
            #expect(x.bRowMajor() == y.bRowMajor())
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json"))) as! [String: Any]
            #expect(config["layers_to_transform"] as? [Int] == [1] && config["base_model_name_or_path"] is NSNull)
        }
    }

    @Test func alternativeKeyNamesAndAllLinearAreAccepted() throws {
        // Given keys without the base_model.model. prefix and with the adapter-name infix
        let reference = tinyTensors(layers: [0], targets: [.k])
        var renamed = SafetensorsWriter()
        let file = try SafetensorsFile(bytes: reference.serialize())
        for name in file.tensorNames {
            let short = String(name.dropFirst("base_model.model.".count)).replacingOccurrences(of: ".weight", with: ".default.weight")
            renamed.add(name: short, shape: file.tensorInfo(name)!.shape, floats: try file.floats(name))
        }

        // Then they load like the canonical names
        let adapter = try loadTiny(["target_modules": "all-linear"], weights: renamed)
        let canonical = try loadTiny(weights: reference)
        #expect(adapter.targets == [.k])
        let (x, y) = (adapter.weights(layer: 0, target: .k)!, canonical.weights(layer: 0, target: .k)!)
        #expect(x.aRowMajor() == y.aRowMajor() && x.bRowMajor() == y.bRowMajor())
    }

    @Test(arguments: LoRAWeightPrecision.allCases)
    func nonFiniteWeightsAreRefused(precision: LoRAWeightPrecision) {
        // Given a B holding one infinity, and an A holding one NaN
        var infiniteB = values(8, seed: 5), nanA = values(16, seed: 6)
        infiniteB[3] = .infinity
        nanA[7] = .nan
        for (a, b, matrix) in [(values(16, seed: 6), infiniteB, "B"), (nanA, values(8, seed: 5), "A")] {
            // When loaded
            let error = loadError { () throws(AdapterError) -> LoRAAdapter in
                try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false, precision: precision,
                                tensors: [(layer: 1, target: .v, a: a, b: b)])
            }
            // Then it is refused, naming the matrix
            guard case .nonFiniteWeights(1, .v, matrix)? = error else {
                Issue.record("expected non-finite \(matrix) refused, got \(String(describing: error))")
                continue
            }
            #expect(error!.description.contains("NaN or infinite"))
        }
    }

    @Test func int8WeightsRoundEachRankToItsOwnScale() throws {
        // Given ranks of very different magnitudes, one all zero
        let a = values(8, seed: 1).map { $0 * 1e-4 } + values(8, seed: 2).map { $0 * 50 }
        let b: [Float] = (0..<8).flatMap { o -> [Float] in [Float(o) - 3.5, 0] }  // B (8, 2): rank 1 all zero
        let adapter = try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false, precision: .int8,
                                      tensors: [(layer: 0, target: .o, a: a, b: b)])
        let v = try #require(adapter.weights(layer: 0, target: .o))
        // Then each held value is within half its rank's step of the original
        #expect(v.precision == .int8 && v.aFactor == 1 && v.bFactor == 1)
        for (r, rank) in [Array(a[0..<8]), Array(a[8..<16])].enumerated() {
            let step = rank.map(abs).max()! / 127
            #expect(abs(v.aScale(rank: r) - step) <= step * 1e-6)
            for (held, original) in zip(v.aRowMajor()[(r * 8)..<(r * 8 + 8)], rank) {
                #expect(abs(held - original) <= step / 2 * 1.0001)
            }
        }
        // And B's rank 0 is within half its step, its all-zero rank 1 exactly zero
        let held = v.bRowMajor(), bStep: Float = 3.5 / 127
        #expect(v.bScale(rank: 1) == 0)
        for i in 0..<16 {
            #expect(i % 2 == 0 ? abs(held[i] - b[i]) <= bStep / 2 * 1.0001 : held[i] == 0, "B element \(i)")
        }
    }

    @Test func weightsAreHeldAsHalvesWithoutLosingSmallOrLargeValues() throws {
        // Given v's A far below the half's normal range (1e-6) and o's B far above its
        // maximum (1e6), and f16 and bf16 files of values a half holds exactly
        let tinyValues = values(16, seed: 3).map { $0 * 1e-5 }, hugeValues = values(16, seed: 4).map { $0 * 1e7 }
        let adapter = try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false, tensors: [
            (layer: 0, target: .v, a: tinyValues, b: values(8, seed: 5)),
            (layer: 0, target: .o, a: values(16, seed: 6), b: hugeValues),
        ])
        let exact = (0..<24).map { Float($0 - 12) / 64 }
        var f16 = SafetensorsWriter(), bf16 = SafetensorsWriter()
        for target in LoRATarget.allCases {
            let (inDim, outDim) = (tiny.inputDim(target), tiny.outputDim(target))
            for layer in [0, 1] {
                f16.add(name: peftName(layer, target, "A"), shape: [2, inDim], f16: Array(exact.prefix(2 * inDim)))
                f16.add(name: peftName(layer, target, "B"), shape: [outDim, 2], f16: Array(repeating: 0.375, count: 2 * outDim))
                bf16.add(name: peftName(layer, target, "A"), shape: [2, inDim], bf16: Array(exact.prefix(2 * inDim)))
                bf16.add(name: peftName(layer, target, "B"), shape: [outDim, 2], bf16: Array(repeating: -0.75, count: 2 * outDim))
            }
        }

        // Then the held values are the originals to a half's 11 significant bits, none
        // flushed to zero or overflowed to infinity
        let v = try #require(adapter.weights(layer: 0, target: .v)), o = try #require(adapter.weights(layer: 0, target: .o))
        #expect(isHalfRounding(v.aRowMajor(), of: tinyValues) && isHalfRounding(o.bRowMajor(), of: hugeValues))
        #expect(isHalfRounding(v.bRowMajor(), of: values(8, seed: 5)) && isHalfRounding(o.aRowMajor(), of: values(16, seed: 6)))
        // And the kernels' one multiplier undoes the power-of-two scaling exactly
        #expect(v.scale == 1 * v.aFactor * v.bFactor && o.scale == 1 * o.aFactor * o.bFactor)  // alpha 2 / rank 2
        #expect(v.aRowMajor() == (0..<16).map { Float(v.a.load(fromByteOffset: 2 * $0, as: Float16.self)) * v.aFactor })
        // And halves and bfloat16s of a half's precision load exactly
        let fromF16 = try loadTiny(weights: f16), fromBF16 = try loadTiny(weights: bf16)
        let q16 = try #require(fromF16.weights(layer: 1, target: .q)), qBF16 = try #require(fromBF16.weights(layer: 1, target: .q))
        #expect(q16.aRowMajor() == Array(exact.prefix(16)) && q16.bRowMajor() == Array(repeating: 0.375, count: 16))
        #expect(qBF16.aRowMajor() == Array(exact.prefix(16)) && qBF16.bRowMajor() == Array(repeating: -0.75, count: 16))
    }

    @Test func initializerPermutesAndValidates() throws {
        // Given B whose entries are their HF row numbers, for k (1 KV head of 4 rows) and o
        let hfRows: [Float] = (0..<4).flatMap { [Float($0), Float($0)] }
        let adapter = try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false, tensors: [
            (layer: 1, target: .k, a: values(16, seed: 0), b: hfRows),
            (layer: 0, target: .o, a: values(16, seed: 1), b: values(16, seed: 2)),
        ])

        // Then k's rows come out as HF rows 0, 2, 1, 3 (pairs i and i + headDim/2 interleaved); o is unchanged
        #expect(adapter.weights(layer: 1, target: .k)!.bRowMajor() == [0, 0, 2, 2, 1, 1, 3, 3])
        #expect(isHalfRounding(adapter.weights(layer: 0, target: .o)!.bRowMajor(), of: values(16, seed: 2)))
        #expect(adapter.weights(layer: 0, target: .k) == nil && adapter.targets == [.k, .o])
        #expect(loraScale(adapter.weights(layer: 1, target: .k)!) == 1)

        // And bad inputs are errors, not crashes
        let wrongCount = loadError { () throws(AdapterError) in
            try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false, tensors: [(0, .q, values(15, seed: 0), values(16, seed: 0))])
        }
        guard case .elementCountMismatch(0, .q, "A", 16, 15)? = wrongCount else { Issue.record("got \(String(describing: wrongCount))"); return }
        let twice = loadError { () throws(AdapterError) in
            try LoRAAdapter(shape: tiny, rank: 2, alpha: 2, useRSLoRA: false,
                            tensors: [(0, .v, values(16, seed: 0), values(8, seed: 0)), (0, .v, values(16, seed: 0), values(8, seed: 0))])
        }
        guard case .duplicateWeights? = twice else { Issue.record("got \(String(describing: twice))"); return }
        var odd = tiny
        odd.headDim = 3
        let oddHead = loadError { () throws(AdapterError) in
            try LoRAAdapter(shape: odd, rank: 2, alpha: 2, useRSLoRA: false, tensors: [(0, .v, values(16, seed: 0), values(6, seed: 0))])
        }
        guard case .invalidBaseShape? = oddHead else { Issue.record("got \(String(describing: oddHead))"); return }
    }
}
