import Foundation
import Kernels
import Testing
import Model
import ModelFormats

/// Loading and the forward pass on small random models the test writes, so they are
/// checked without the real model and for several weight types.
@Suite struct SyntheticModelTests {
    func run(_ model: LlamaModel, sequences: [(tokens: [Int], start: Int, table: BlockTable)],
             cache: KVCache, state: RunState) -> [[Float]] {
        let batch = ForwardBatch(maxRows: state.maxRows, maxSequences: sequences.count)
        for s in sequences {
            batch.add(tokens: s.tokens.map { Int32($0) }, startPosition: s.start, blockTable: s.table.entries, logits: .all)
        }
        model.forward(batch: batch, cache: cache, state: state)
        let v = model.config.vocabSize
        return (0..<batch.logitCount).map { Array(UnsafeBufferPointer(start: state.logits + $0 * v, count: v)) }
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .q4_0, .f32], WeightLayout.allCases)
    func forwardMatchesNaiveReference(type: GGMLType, layout: WeightLayout) throws {
        // Given a random model with projections in `type`, loaded in `layout`
        let synthetic = try SyntheticModel(seed: 11, projectionType: type)
        defer { try? FileManager.default.removeItem(atPath: synthetic.path) }
        let gguf = try GGUFFile(path: synthetic.path)
        let model = try LlamaModel(gguf: gguf, layout: layout)
        #expect(model.config == synthetic.config)
        #expect(model.weights.layers[0].q.interleaved == (layout == .interleaved && (type == .q4_1 || type == .q8_0)))
        let tokens = [3, 17, 99, 42, 5, 127, 0, 64, 8, 31, 77, 2, 50, 19, 101, 6, 90, 33]
        // When the tokens run in one pass (18 rows: the gemm path) and then one by one (the dot path)
        let cache = KVCache(config: model.config, nBlocks: 8, blockSize: 8)
        let table = BlockTable(capacity: 8)
        #expect(table.reserve(positions: tokens.count, in: cache))
        let state = RunState(config: model.config, maxRows: 32, maxLogitRows: 32, maxContext: 64)
        let onePass = run(model, sequences: [(tokens, 0, table)], cache: cache, state: state)
        var stepwise: [[Float]] = []
        for (p, token) in tokens.enumerated() {
            stepwise += run(model, sequences: [([token], p, table)], cache: cache, state: state)
        }
        // Then both equal the naive double-precision forward pass
        let reference = synthetic.referenceLogits(gguf, tokens: tokens)
        for p in tokens.indices {
            let want = reference[p].map { Float($0) }
            #expect(zip(onePass[p], want).map { abs($0 - $1) }.max()! < 2e-3, "one pass, position \(p)")
            #expect(zip(stepwise[p], want).map { abs($0 - $1) }.max()! < 2e-3, "stepwise, position \(p)")
        }
    }

    @Test func int16ActivationsDefaultToTheRowMajorLayoutTheirKernelsRead() throws {
        // Given a Q4_1 model
        let synthetic = try SyntheticModel(seed: 13, projectionType: .q4_1)
        defer { try? FileManager.default.removeItem(atPath: synthetic.path) }
        let gguf = try GGUFFile(path: synthetic.path)
        // When it loads with no layout asked for, with f32 and with int16 activations
        let f32 = try LlamaModel(gguf: gguf), int16 = try LlamaModel(gguf: gguf, decodeActivations: .int16)
        // Then f32 gets interleaved weights and int16 row-major ones, unless a layout is given
        #expect(f32.weights.layers[0].q.interleaved)
        #expect(!int16.weights.layers[0].q.interleaved)
        #expect(try LlamaModel(gguf: gguf, decodeActivations: .int16, layout: .interleaved).weights.layers[0].q.interleaved)
    }

    @Test func sequencesInOneBatchDoNotInterfere() throws {
        // Given a model and three prompts of different lengths
        let synthetic = try SyntheticModel(seed: 12)
        defer { try? FileManager.default.removeItem(atPath: synthetic.path) }
        let model = try LlamaModel(path: synthetic.path)
        let prompts = [[1, 2, 3, 4, 5], [9, 8], [100, 50, 25, 12, 6, 3, 1]]
        let cache = KVCache(config: model.config, nBlocks: 16, blockSize: 8)
        let state = RunState(config: model.config, maxRows: 32, maxLogitRows: 32, maxContext: 64)
        // When each runs alone, and then all run together in one batch with fresh blocks
        var alone: [[Float]] = []
        for prompt in prompts {
            let table = BlockTable(capacity: 4)
            #expect(table.reserve(positions: prompt.count, in: cache))
            alone += run(model, sequences: [(prompt, 0, table)], cache: cache, state: state)
            table.release(to: cache)
        }
        let tables = prompts.map { prompt -> BlockTable in
            let table = BlockTable(capacity: 4)
            #expect(table.reserve(positions: prompt.count, in: cache))
            return table
        }
        let together = run(model, sequences: zip(prompts, tables).map { ($0, 0, $1) }, cache: cache, state: state)
        // Then every row's logits are the same
        #expect(alone.count == together.count)
        for (a, b) in zip(alone, together) {
            #expect(zip(a, b).map { abs($0 - $1) }.max()! < 1e-4)
        }
    }

    @Test func decodeRowsOfStaggeredLengthsMatchEachAlone() throws {
        // Given twelve sequences whose histories run from 63 positions down to 1, as
        // continuous batching leaves them (attention then splits its work by cost, many
        // chunks a thread, not one even range by count)
        let synthetic = try SyntheticModel(seed: 14)
        defer { try? FileManager.default.removeItem(atPath: synthetic.path) }
        let model = try LlamaModel(path: synthetic.path)
        let lengths = (0..<12).map { 63 - 62 * $0 / 11 }
        let cache = KVCache(config: model.config, nBlocks: 12 * 8, blockSize: 8)
        let histories = lengths.enumerated().map { i, n in (0..<n).map { (i * 31 + $0 * 17 + 5) % 128 } }
        let tables = histories.map { history -> BlockTable in
            let table = BlockTable(capacity: 8)
            #expect(table.reserve(positions: history.count + 1, in: cache))
            return table
        }
        let prefill = RunState(config: model.config, maxRows: 64, maxLogitRows: 64, maxContext: 64)
        for (history, table) in zip(histories, tables) {
            _ = run(model, sequences: [(history, 0, table)], cache: cache, state: prefill)
        }
        // When each one's next token runs alone, and then all twelve in one batch, on a
        // fresh run state
        let next = lengths.indices.map { [($0 * 37) % 128] }
        var alone: [[Float]] = []
        for i in lengths.indices {
            alone += run(model, sequences: [(next[i], lengths[i], tables[i])], cache: cache, state: prefill)
        }
        let fresh = RunState(config: model.config, maxRows: 12, maxLogitRows: 12, maxContext: 64)
        let together = run(model, sequences: lengths.indices.map { (next[$0], lengths[$0], tables[$0]) },
                           cache: cache, state: fresh)
        // Then every row's logits are bit-identical
        #expect(together == alone)
    }

    @Test func missingTensorAndBadShapeAreClearErrors() throws {
        // Given a model file without its output norm
        var w = GGUFWriter()
        w.add(key: "general.architecture", .string("llama"))
        for (key, value) in [("embedding_length", 64), ("feed_forward_length", 96), ("block_count", 1),
                             ("attention.head_count", 4), ("vocab_size", 32)] {
            w.add(key: "llama.\(key)", .uint32(UInt32(value)))
        }
        w.add(key: "llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.addTensor(name: "token_embd.weight", dims: [64, 32], type: .f32,
                    data: SyntheticModel.encode([Float](repeating: 0, count: 64 * 32), type: .f32))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-missing-\(UUID()).gguf").path
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        // When loaded, Then the error names the tensor
        #expect(throws: ModelError.missingTensor("output_norm.weight")) { try LlamaModel(path: path) }
    }

    @Test func unsupportedArchitectureIsRefused() throws {
        var w = GGUFWriter()
        w.add(key: "general.architecture", .string("mamba"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-arch-\(UUID()).gguf").path
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ModelError.self) { try LlamaModel(path: path) }
    }

    @Test(arguments: KVPrecision.allCases)
    func kvBudgetGivesTheBlocksThatFitIt(precision: KVPrecision) {
        // Given the synthetic config: 2 layers, keys and values of 2 × 16 per position
        let config = SyntheticModel.config
        let perPosition = 2 * 2 * 32 * precision.bytesPerElement
        #expect(KVCache.bytesPerPosition(config: config, precision: precision) == perPosition)
        // When a budget holds exactly 10 blocks of 8 positions, and one byte less
        let budget = 10 * 8 * perPosition
        // Then it gives 10 blocks, and 9
        #expect(KVCache.blocks(fitting: budget, config: config, blockSize: 8, precision: precision) == 10)
        #expect(KVCache.blocks(fitting: budget - 1, config: config, blockSize: 8, precision: precision) == 9)
    }
}
