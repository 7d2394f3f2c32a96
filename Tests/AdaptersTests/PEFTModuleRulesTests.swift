import Adapters
import Foundation
import ModelFormats
import Testing

// Expected values below are worked out by hand from PEFT 0.21's rules (PEFTModuleRules'
// header), not by the code under test.
@Suite struct PEFTModuleRulesTests {
    @Test func rankAndAlphaPatternsGiveEachModuleItsOwnRankAndScale() throws {
        // Given q_proj at rank 4 everywhere, layer 1's down_proj at rank 3, v_proj with
        // alpha 8 and layer 0's o_proj with alpha 1 (r 2, lora_alpha 4 elsewhere)
        let config: [String: Any] = [
            "rank_pattern": ["q_proj": 4, "model.layers.1.mlp.down_proj": 3],
            "alpha_pattern": ["v_proj": 8, "layers.0.self_attn.o_proj": 1],
        ]
        func rank(_ layer: Int, _ target: LoRATarget) -> Int {
            target == .q ? 4 : (layer == 1 && target == .down ? 3 : 2)
        }
        for rsLoRA in [false, true] {
            var changes = config
            changes["use_rslora"] = rsLoRA
            let adapter = try loadTiny(changes, weights: tinyTensors(rank: rank))

            // Then every projection carries its own rank, alpha and scale
            #expect(adapter.maxRank == 4)
            for layer in 0..<2 {
                for target in LoRATarget.allCases {
                    let w = try #require(adapter.weights(layer: layer, target: target))
                    let alpha: Float = target == .v ? 8 : (layer == 0 && target == .o ? 1 : 4)
                    let r = Float(rank(layer, target))
                    #expect(w.rank == rank(layer, target) && w.alpha == alpha, "\(layer) \(target)")
                    #expect(loraScale(w) == (rsLoRA ? alpha / r.squareRoot() : alpha / r), "\(layer) \(target)")
                }
            }
        }

        // And a key matches whole dotted parts only: "proj" is not q_proj, so r applies
        let partial = try loadTiny(["rank_pattern": ["proj": 4]])
        #expect(partial.maxRank == 2)
        // And a regular expression key applies to every module it ends
        let layerOne = try loadTiny(["rank_pattern": ["layers\\.1\\..*": 3]], weights: tinyTensors { layer, _ in layer == 1 ? 3 : 2 })
        #expect(layerOne.weights(layer: 1, target: .gate)!.rank == 3 && layerOne.weights(layer: 0, target: .gate)!.rank == 2)
        // And tensors of the config's r where a pattern asks for another rank are refused, naming the pattern
        let mismatch = loadError { () throws(AdapterError) in try loadTiny(["rank_pattern": ["q_proj": 4]]) }
        guard case .tensorShapeMismatch(let name, let expected, let found, let hint)? = mismatch else {
            Issue.record("got \(String(describing: mismatch))")
            return
        }
        #expect(name.contains("q_proj.lora_") && expected.contains(4) && found.contains(2) && hint.contains("rank_pattern"))
    }

    @Test func patternKeysThatDisagreeOnAModuleAreRefused() throws {
        // Given two keys that both match layer 1's q_proj with different ranks
        let error = loadError { () throws(AdapterError) in
            try loadTiny(["rank_pattern": ["q_proj": 4, "layers.1.self_attn.q_proj": 3]], weights: tinyTensors { _, t in t == .q ? 4 : 2 })
        }
        // Then the load fails naming both keys and the module (PEFT's answer depends on key order)
        guard case .unsupportedFeature("rank_pattern", let value, let reason)? = error else {
            Issue.record("got \(String(describing: error))")
            return
        }
        #expect(value.contains("q_proj") && value.contains("layers.1.self_attn.q_proj") && reason.contains("model.layers.1.self_attn.q_proj"))

        // And keys that overlap but agree are fine
        let agreeing = try loadTiny(["alpha_pattern": ["q_proj": 6, "model.layers.1.self_attn.q_proj": 6]])
        #expect(agreeing.weights(layer: 1, target: .q)!.alpha == 6 && agreeing.weights(layer: 1, target: .k)!.alpha == 4)

        // And values of the wrong kind are refused
        let zero = loadError { () throws(AdapterError) in try loadTiny(["rank_pattern": ["q_proj": 0]]) }
        guard case .invalidRank(0)? = zero else { Issue.record("got \(String(describing: zero))"); return }
        let text = loadError { () throws(AdapterError) in try loadTiny(["alpha_pattern": ["q_proj": "big"]]) }
        guard case .invalidConfig? = text else { Issue.record("got \(String(describing: text))"); return }
    }

    @Test func targetModulesAsARegularExpression() throws {
        // Given a regular expression selecting layer 1's q and v and its whole MLP
        let pattern = "model\\.layers\\.1\\.(self_attn\\.(q|v)_proj|mlp\\..*)"
        let selected: [LoRATarget] = [.q, .v, .gate, .up, .down]
        let adapter = try loadTiny(["target_modules": pattern], weights: tinyTensors(layers: [1], targets: selected))

        // Then exactly those projections are adapted
        for layer in 0..<2 {
            for target in LoRATarget.allCases {
                #expect((adapter.weights(layer: layer, target: target) != nil) == (layer == 1 && selected.contains(target)))
            }
        }
        // And a tensor on a module the expression leaves out is refused, saying so
        let outside = loadError { () throws(AdapterError) in try loadTiny(["target_modules": pattern]) }
        guard case .unexpectedTensor(let name, let reason)? = outside else { Issue.record("got \(String(describing: outside))"); return }
        #expect(name.contains("layers.0.") && reason.contains("does not match target_modules"))

        // And the expression must match the whole name: "q_proj" alone selects nothing
        let partial = loadError { () throws(AdapterError) in try loadTiny(["target_modules": "q_proj"]) }
        guard case .invalidConfig(_, let none)? = partial else { Issue.record("got \(String(describing: partial))"); return }
        #expect(none.contains("selects none"))
        // And an expression that does not compile, or one combined with layers_to_transform, is refused
        let broken = loadError { () throws(AdapterError) in try loadTiny(["target_modules": "model\\.layers\\.(1"]) }
        guard case .invalidConfig(_, let compile)? = broken else { Issue.record("got \(String(describing: broken))"); return }
        #expect(compile.contains("regular expression"))
        let withLayers = loadError { () throws(AdapterError) in try loadTiny(["target_modules": ".*_proj", "layers_to_transform": [1]]) }
        guard case .invalidConfig(_, let both)? = withLayers else { Issue.record("got \(String(describing: withLayers))"); return }
        #expect(both.contains("layers_to_transform"))
        // And "all-linear" is read case-insensitively, as PEFT does
        #expect(try loadTiny(["target_modules": "ALL-LINEAR"]).targets == Set(LoRATarget.allCases))
    }

    @Test func targetNamesMayCarryTheirModulePath() throws {
        // Given layer 0's q_proj by its full name and up_proj by its submodule path
        let adapter = try loadTiny(["target_modules": ["model.layers.0.self_attn.q_proj", "mlp.up_proj"]],
                                   weights: combined(tinyTensors(layers: [0], targets: [.q]), tinyTensors(targets: [.up])))
        #expect(adapter.weights(layer: 0, target: .q) != nil && adapter.weights(layer: 1, target: .q) == nil)
        #expect(adapter.weights(layer: 0, target: .up) != nil && adapter.weights(layer: 1, target: .up) != nil)
        // And a name that is no projection's, or only part of one, is refused by name
        for name in ["lm_head", "proj", "attn.q_proj", "model.layers.7.self_attn.q_proj"] {
            let error = loadError { () throws(AdapterError) in try loadTiny(["target_modules": ["q_proj", name]]) }
            guard case .unknownTargetModule(name)? = error else { Issue.record("\(name): got \(String(describing: error))"); continue }
        }
    }

    @Test func excludedModulesAreLeftAlone() throws {
        // Given all projections but layer 0's down_proj and every k_proj (a list), or
        // layer 1's MLP (an expression)
        let listed = try loadTiny(["exclude_modules": ["model.layers.0.mlp.down_proj", "k_proj", "lm_head"]],
                                  weights: combined(tinyTensors(targets: [.q, .v, .o, .gate, .up]), tinyTensors(layers: [1], targets: [.down])))
        #expect(listed.weights(layer: 0, target: .down) == nil && listed.weights(layer: 1, target: .down) != nil)
        #expect(listed.weights(layer: 1, target: .k) == nil && listed.weights(layer: 0, target: .q) != nil)
        // Then a tensor on an excluded module is refused, not silently dropped
        let error = loadError { () throws(AdapterError) in try loadTiny(["exclude_modules": ["model.layers.0.mlp.down_proj"]]) }
        guard case .unexpectedTensor(let name, let reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(name == peftName(0, .down, "A") || name == peftName(0, .down, "B"))
        #expect(reason.contains("exclude_modules"))

        let expression = try loadTiny(["exclude_modules": ".*\\.1\\.mlp\\..*"],
                                      weights: combined(tinyTensors(layers: [0]), tinyTensors(layers: [1], targets: [.q, .k, .v, .o])))
        #expect(expression.weights(layer: 1, target: .gate) == nil && expression.weights(layer: 1, target: .o) != nil)
        #expect(expression.weights(layer: 0, target: .gate) != nil)

        // And excluding everything is an error, not an empty adapter
        let all = loadError { () throws(AdapterError) in try loadTiny(["exclude_modules": ".*"]) }
        guard case .invalidConfig(_, let none)? = all else { Issue.record("got \(String(describing: all))"); return }
        #expect(none.contains("selects none"))
    }

    @Test func emptyLayerListsAndTheLlamaLayersPatternMeanEveryLayer() throws {
        let adapter = try loadTiny(["layers_to_transform": [Int](), "layers_pattern": "layers"])
        #expect(adapter.weights(layer: 0, target: .q) != nil && adapter.weights(layer: 1, target: .q) != nil)
        let listed = try loadTiny(["layers_to_transform": [1], "layers_pattern": ["layers"]], weights: tinyTensors(layers: [1]))
        #expect(listed.weights(layer: 0, target: .q) == nil)
    }

    @Test func mixedRanksAndAlphasExportAsPatternsAndReloadTheSame() throws {
        // Given q_proj at rank 4 in every layer, layer 1's down_proj at rank 3, and alphas
        // that differ by layer for v_proj
        var projections: [LoRAProjection] = []
        for layer in 0..<2 {
            for target in LoRATarget.allCases {
                let rank = target == .q ? 4 : (layer == 1 && target == .down ? 3 : 2)
                let alpha: Float = target == .v ? Float(layer + 5) : 4
                projections.append(LoRAProjection(layer: layer, target: target, rank: rank, alpha: alpha))
            }
        }
        let adapter = try LoRAAdapter(shape: tiny, useRSLoRA: true, projections: projections) { i in
            let p = projections[i]
            return (values(p.rank * tiny.inputDim(p.target), seed: i), values(tiny.outputDim(p.target) * p.rank, seed: i + 50))
        }

        try withTemporaryDirectory { directory in
            // When it is saved in PEFT's layout
            try adapter.savePEFT(directory: directory, baseModelName: nil)

            // Then the config states the common values and each exception once
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json"))) as! [String: Any]
            #expect(config["r"] as? Int == 2 && config["lora_alpha"] as? Int == 4 && config["use_rslora"] as? Bool == true)
            #expect(config["rank_pattern"] as? [String: Int] == ["q_proj": 4, "model.layers.1.mlp.down_proj": 3])
            #expect(config["alpha_pattern"] as? [String: Int] == ["model.layers.0.self_attn.v_proj": 5, "model.layers.1.self_attn.v_proj": 6])
            let file = try SafetensorsFile(path: directory + "/adapter_model.safetensors")
            #expect(file.tensorInfo(peftName(1, .down, "A"))!.shape == [3, 12] && file.tensorInfo(peftName(0, .q, "B"))!.shape == [8, 4])

            // And loading it back gives every projection its rank, alpha and weights
            let again = try LoRAAdapter.loadPEFT(directory: directory, base: tiny)
            #expect(again.maxRank == 4 && again.useRSLoRA)
            for p in projections {
                let (x, y) = (adapter.weights(layer: p.layer, target: p.target)!, again.weights(layer: p.layer, target: p.target)!)
                #expect(y.rank == p.rank && y.alpha == p.alpha && loraScale(y) == loraScale(x))
                #expect(x.aRowMajor() == y.aRowMajor() && x.bRowMajor() == y.bRowMajor())
            }
        }
    }
}
