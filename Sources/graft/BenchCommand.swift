import Adapters
import ArgumentParser
import Engine
import Foundation
import Kernels
import Model

/// Prints one JSON line per measurement; medians over several runs after a warm-up,
/// because a shared 2-core machine is noisy. Everything runs through the batched
/// engine, the same path the server uses.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prefill, decode and batched decode speed; one JSON line per measurement.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Timed runs per measurement (the median is reported).")
    var runs = 3

    @Option(name: .customLong("prefill-tokens"), help: "Prompt length for the prefill measurement.")
    var prefillTokens = 512

    @Option(name: .customLong("decode-tokens"), help: "Tokens generated per stream in the decode measurements.")
    var decodeTokens = 128

    @Option(name: .customLong("adapter-rank"), help: "Rank of the random adapters in the batched measurements.")
    var adapterRank = 16

    @Flag(name: .customLong("skip-batched"), help: "Only the single-stream measurements.")
    var skipBatched = false

    @Flag(help: "Instead of speed, the memory table: peak RSS with the base model alone, then with 8 and 32 adapters decoding.")
    var memory = false

    @Flag(help: "Instead of the engine, the decode path's weight products alone: every projection and the output matrix with 1, 8 and 32 rows; then the adapter side paths of 32 rows alone, with one adapter and with 32.")
    var kernels = false

    func validate() throws {
        if runs < 1 || prefillTokens < 2 || decodeTokens < 2 || adapterRank < 1 {
            throw ValidationError("--runs >= 1, --prefill-tokens >= 2, --decode-tokens >= 2, --adapter-rank >= 1")
        }
    }

    func run() async throws {
        let loaded = try LoadedModel(options: options)
        let model = loaded.model
        let threads = Parallel.threadCount
        let bench = EngineBench(loaded: loaded)
        if memory { return try await memoryTable(bench) }
        if kernels {
            return kernelTable(KernelBench(model: model), kvPrecision: loaded.kvPrecision,
                               adapterPrecision: loaded.adapterPrecision)
        }

        // Prefill: one prompt in one forward pass, submit to finish.
        let prompt = bench.prompt(tokens: prefillTokens, variant: 0)
        let prefill = try await bench.median(runs) {
            try await bench.run(streams: [prompt], maxTokens: 1, maxTokensPerStep: prefillTokens).totalSeconds
        }
        report(["name": "prefill", "tokens": prefillTokens, "seconds_median": prefill,
                "tokens_per_second": Double(prefillTokens) / prefill, "runs": runs, "threads": threads])

        // Tokenizer: encode ~11k tokens of prose.
        let text = String(repeating: EngineBench.paragraph, count: 250)
        var encoded = 0
        let encode = try await bench.median(runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            encoded = loaded.tokenizer.encode(text, parseSpecialTokens: false, addBOS: false).count
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        report(["name": "tokenize", "tokens": encoded, "tokens_per_second": Double(encoded) / encode, "runs": runs])

        // Decode: single stream, from its first token to its last.
        let single = try await bench.median(runs) {
            try await bench.run(streams: [bench.prompt(tokens: 32, variant: 1)], maxTokens: decodeTokens).decodeTokensPerSecond
        }
        report(["name": "decode", "streams": 1, "tokens": decodeTokens, "tokens_per_second": single, "runs": runs,
                "threads": threads, "weight_bytes_per_token": model.weights.bytesPerToken])
        guard !skipBatched else { return }

        // Batched decode: aggregate tokens/s while every stream is decoding.
        let shape = model.adapterShape
        let distinct = (0..<32).map {
            LoRAAdapter.random(shape: shape, rank: adapterRank, seed: UInt64($0), precision: loaded.adapterPrecision)
        }
        let cases: [(name: String, streams: Int, adapters: (Int) -> LoRAAdapter?)] = [
            ("decode_batch_1", 1, { _ in nil }),
            ("decode_batch_8", 8, { _ in nil }),
            ("decode_batch_32", 32, { _ in nil }),
            ("decode_batch_32_one_adapter", 32, { _ in distinct[0] }),
            ("decode_batch_32_distinct_adapters", 32, { distinct[$0] }),
        ]
        // Rounds go through every case in turn (after one warm-up of each), so drift in
        // the machine's load falls on all cases alike; each ratio is the median of the
        // rounds' own ratios.
        let streams = cases.map { c in (0..<c.streams).map { bench.prompt(tokens: 24 + $0 % 8, variant: $0 + 2) } }
        var rounds: [[Double]] = []
        for round in 0...runs {
            var rates: [Double] = []
            for (i, c) in cases.enumerated() {
                rates.append(try await bench.run(streams: streams[i], adapters: (0..<c.streams).map(c.adapters),
                                                 maxTokens: decodeTokens / 2).decodeTokensPerSecond)
            }
            if round > 0 { rounds.append(rates) }
        }
        for (i, c) in cases.enumerated() {
            report(["name": c.name, "streams": c.streams, "adapters": c.name.contains("distinct") ? c.streams : c.name.contains("adapter") ? 1 : 0,
                    "adapter_rank": adapterRank, "adapter_weights": loaded.adapterPrecision.rawValue,
                    "tokens_per_stream": decodeTokens / 2,
                    "tokens_per_second": EngineBench.median(rounds.map { $0[i] }), "runs": runs, "threads": threads])
        }
        func ratio(_ a: String, _ b: String) -> Double {
            let (i, j) = (cases.firstIndex { $0.name == a }!, cases.firstIndex { $0.name == b }!)
            return EngineBench.median(rounds.map { $0[i] / $0[j] })
        }
        report(["name": "ratios", "runs": runs,
                "batch_32_over_single": ratio("decode_batch_32", "decode_batch_1"),
                "batch_8_over_single": ratio("decode_batch_8", "decode_batch_1"),
                "distinct_adapters_over_no_adapter": ratio("decode_batch_32_distinct_adapters", "decode_batch_32"),
                "one_adapter_over_no_adapter": ratio("decode_batch_32_one_adapter", "decode_batch_32")])
    }

    // Peak RSS only grows, so the steps run in ascending order in this one process: each
    // line's peak holds everything before it (model pages touched, engine scratch, the
    // adapters so far). Every step decodes 32 streams, so the KV cache and run state
    // are the same size in all three and the differences are the adapters.
    private func memoryTable(_ bench: EngineBench) async throws {
        let shape = bench.loaded.model.adapterShape
        var adapters: [LoRAAdapter] = []
        var baseline: Int?
        for count in [0, 8, 32] {
            while adapters.count < count {
                adapters.append(LoRAAdapter.random(shape: shape, rank: adapterRank, seed: UInt64(adapters.count),
                                                   precision: bench.loaded.adapterPrecision))
            }
            let streams = (0..<32).map { bench.prompt(tokens: 24 + $0 % 8, variant: $0 + 2) }
            let assigned: [LoRAAdapter?] = (0..<32).map { count == 0 ? nil : adapters[$0 % count] }
            _ = try await bench.run(streams: streams, adapters: assigned, maxTokens: decodeTokens / 2)
            let (peak, current) = (ProcessMemory.peakResidentBytes, ProcessMemory.residentBytes)
            if count == 0 { baseline = peak }
            var fields: [String: Any] = [
                "name": "memory", "adapters": count, "adapter_rank": adapterRank, "streams": 32,
                "adapter_bytes": adapters.reduce(0) { $0 + $1.byteCount },
                "peak_rss_bytes": peak ?? NSNull(), "rss_bytes": current ?? NSNull(),
            ]
            if let peak, let baseline { fields["peak_rss_over_base_bytes"] = peak - baseline }
            report(fields)
        }
    }

    // Rounds go through every row count in turn (after one warm-up round), so drift in
    // the machine's load falls on all alike; each figure is the median over rounds.
    // Passes per measurement scale down with rows so each takes a similar time.
    private func kernelTable(_ bench: KernelBench, kvPrecision: KVPrecision, adapterPrecision: LoRAWeightPrecision) {
        let rowCounts = [1, 8, 32]
        func tokens(_ rows: Int) -> Double { Double(rows * max(1, 16 / rows)) }
        var rounds: [[KernelBench.Result]] = []
        for round in 0...runs {
            let results = rowCounts.map { bench.measure(rows: $0, passes: Int(tokens($0)) / $0) }
            if round > 0 { rounds.append(results) }
        }
        for (i, rows) in rowCounts.enumerated() {
            let samples = rounds.map { $0[i] }
            let r = samples.sorted { $0.seconds < $1.seconds }[samples.count / 2]
            var fields: [String: Any] = [
                "name": "kernels", "rows": rows, "runs": runs, "threads": Parallel.threadCount,
                "activations": bench.model.decodeActivations.rawValue,
                "tokens_per_second": tokens(rows) / r.seconds,
                "gmacs_per_second": tokens(rows) * Double(bench.macsPerToken) / r.seconds / 1e9,
            ]
            for (kind, seconds) in r.perKind { fields["share_" + kind] = seconds / r.seconds }
            if bench.model.decodeActivations == .int8 { fields["vnni"] = MatMul.int8UsesVNNI }
            report(fields)
        }
        report(["name": "kernel_ratios", "runs": runs,
                "rows_32_over_1": EngineBench.median(rounds.map { tokens(32) / $0[2].seconds / (tokens(1) / $0[0].seconds) })])
        if bench.model.decodeActivations == .int8 && MatMul.int8UsesVNNI { vnniTable(bench, tokens: tokens) }

        // The side paths of 32 decode rows (all seven projections, --adapter-rank), tokens/s
        // of the side path alone, the sets alternating: one adapter for all; two taking
        // turns, so every row has its own weights but they stay in L3; one each, streamed
        // from memory; and one each held in the other precision, for a same-run ratio.
        let shape = bench.model.adapterShape
        func adapters(_ precision: LoRAWeightPrecision) -> [LoRAAdapter] {
            (0..<32).map { LoRAAdapter.random(shape: shape, rank: adapterRank, seed: UInt64($0), precision: precision) }
        }
        let distinct = adapters(adapterPrecision)
        let otherPrecision: LoRAWeightPrecision = adapterPrecision == .f16 ? .int8 : .f16
        let sideRows = 32, sidePasses = 2
        let sets = [[distinct[0]], Array(distinct[0..<2]), distinct, adapters(otherPrecision)]
        var sideSeconds: [[Double]] = sets.map { _ in [] }
        for round in 0...runs {
            let seconds = sets.map { bench.measureSidePath(rows: sideRows, adapters: $0, passes: sidePasses) }
            if round > 0 { for i in sets.indices { sideSeconds[i].append(seconds[i]) } }
        }
        for (i, set) in sets.enumerated() {
            report(["name": "kernels_side_path", "rows": sideRows, "adapters": set.count, "adapter_rank": adapterRank,
                    "adapter_weights": set[0].precision.rawValue, "runs": runs,
                    "tokens_per_second": Double(sideRows * sidePasses) / EngineBench.median(sideSeconds[i])])
        }
        report(["name": "kernels_side_path_ratios", "runs": runs, "adapters": 32,
                "int8_over_f16": EngineBench.median(zip(sideSeconds[2], sideSeconds[3]).map {
                    adapterPrecision == .int8 ? $1 / $0 : $0 / $1
                })])

        // Attention alone, 32 decode rows, their KV blocks scattered: all at 512 positions;
        // and staggered, 1024 down to 32 positions in arrival order, as continuous
        // batching leaves a batch whose requests came one after another (the engine's
        // decode rows of one adapter, or none, keep arrival order). The two take turns
        // within each round.
        let staggered = (0..<32).map { 1024 - 992 * $0 / 31 }
        let attentionSets = [("kernels_attention", DecodeStepBench(model: bench.model, sequences: 32, context: 512,
                                                                   precision: kvPrecision)),
                             ("kernels_attention_staggered", DecodeStepBench(model: bench.model, contexts: staggered,
                                                                             precision: kvPrecision))]
        let steps = 4
        var attentionSeconds: [[Double]] = attentionSets.map { _ in [] }
        for round in 0...runs {
            let seconds = attentionSets.map { $0.1.measureAttention(steps: steps) }
            if round > 0 { for i in attentionSets.indices { attentionSeconds[i].append(seconds[i]) } }
        }
        for (i, (name, attention)) in attentionSets.enumerated() {
            let perStep = EngineBench.median(attentionSeconds[i]) / Double(steps)
            report(["name": name, "sequences": attention.sequences, "contexts": "\(attention.contexts.min()!)-\(attention.contexts.max()!)",
                    "kv_cache": kvPrecision.rawValue,
                    "runs": runs, "tokens_per_second": Double(attention.sequences) / perStep,
                    "kv_gb_per_second": Double(attention.bytesPerStep) / perStep / 1e9])
        }
        if AttentionKernels.cpuHasAVX512 { attentionBuildTable(attentionSets[0].1, kvPrecision: kvPrecision, steps: steps) }
        stepTable(bench, kvPrecision: kvPrecision, distinct: distinct)
    }

    // The attention kernels' AVX-512 build against their AVX2 one (identical results),
    // the two taking turns in each round; the ratio the median of the rounds' own.
    private func attentionBuildTable(_ attention: DecodeStepBench, kvPrecision: KVPrecision, steps: Int) {
        defer { AttentionKernels.usesAVX512 = true }
        var rounds: [(avx2: Double, avx512: Double)] = []
        for round in 0...runs {
            AttentionKernels.usesAVX512 = false
            let avx2 = attention.measureAttention(steps: steps)
            AttentionKernels.usesAVX512 = true
            let avx512 = attention.measureAttention(steps: steps)
            if round > 0 { rounds.append((avx2, avx512)) }
        }
        let tokens = { (seconds: Double) in Double(attention.sequences * steps) / seconds }
        report(["name": "kernels_attention_avx512", "sequences": attention.sequences, "kv_cache": kvPrecision.rawValue,
                "runs": runs, "tokens_per_second_avx2": tokens(EngineBench.median(rounds.map(\.avx2))),
                "tokens_per_second_avx512": tokens(EngineBench.median(rounds.map(\.avx512))),
                "avx512_over_avx2": EngineBench.median(rounds.map { $0.avx2 / $0.avx512 })])
    }

    // The int8 products with VNNI against the AVX2 kernels (identical results), the
    // two taking turns in each round; each ratio the median of the rounds' own.
    private func vnniTable(_ bench: KernelBench, tokens: (Int) -> Double) {
        defer { MatMul.int8UsesVNNI = true }
        for rows in [1, 32] {
            var vnni: [Double] = [], avx2: [Double] = []
            for round in 0...runs {
                let seconds = [false, true].map { on in
                    MatMul.int8UsesVNNI = on
                    return bench.measure(rows: rows, passes: Int(tokens(rows)) / rows).seconds
                }
                if round > 0 { (avx2, vnni) = (avx2 + [seconds[0]], vnni + [seconds[1]]) }
            }
            report(["name": "kernels_int8_vnni", "rows": rows, "runs": runs,
                    "tokens_per_second_avx2": tokens(rows) / EngineBench.median(avx2),
                    "tokens_per_second_vnni": tokens(rows) / EngineBench.median(vnni),
                    "vnni_over_avx2": EngineBench.median(zip(avx2, vnni).map { $0 / $1 })])
        }
    }

    // Whole decode steps outside the engine, the sets of sequences taking turns within
    // each round: one sequence; 32 with no adapter, one adapter for all, and 32 distinct
    // adapters. The same ratios as the engine's, without its scheduling and sampling.
    // The 32-row weight products alone and the 32 sequences' attention alone run in the
    // same rounds, so their shares of the no-adapter step are same-moment figures: what
    // the step spends beyond its products, and how much of that is attention.
    private func stepTable(_ products: KernelBench, kvPrecision: KVPrecision, distinct: [LoRAAdapter]) {
        let model = products.model, context = 128
        let sets: [(name: String, bench: DecodeStepBench, steps: Int)] = [
            ("1", DecodeStepBench(model: model, sequences: 1, context: context, precision: kvPrecision), 32),
            ("32", DecodeStepBench(model: model, sequences: 32, context: context, precision: kvPrecision), 4),
            ("32_one_adapter", DecodeStepBench(model: model, sequences: 32, context: context, precision: kvPrecision,
                                               adapters: [distinct[0]]), 4),
            ("32_distinct_adapters", DecodeStepBench(model: model, sequences: 32, context: context,
                                                     precision: kvPrecision, adapters: distinct), 4),
        ]
        var tokensPerSecond: [[Double]] = sets.map { _ in [] }
        var productsShare: [Double] = [], attentionShare: [Double] = []
        for round in 0...runs {
            var stepSeconds = 0.0
            for (i, set) in sets.enumerated() {
                let seconds = set.bench.measureStep(steps: set.steps)
                if i == 1 { stepSeconds = seconds / Double(set.steps) }
                if round > 0 { tokensPerSecond[i].append(Double(set.bench.sequences * set.steps) / seconds) }
            }
            let productSeconds = products.measure(rows: 32, passes: 4).seconds / 4
            let attentionSeconds = sets[1].bench.measureAttention(steps: 4) / 4
            if round > 0 {
                productsShare.append(productSeconds / stepSeconds)
                attentionShare.append(attentionSeconds / stepSeconds)
            }
        }
        for (i, set) in sets.enumerated() {
            report(["name": "kernels_step_" + set.name, "sequences": set.bench.sequences, "context": context,
                    "runs": runs, "tokens_per_second": EngineBench.median(tokensPerSecond[i])])
        }
        func ratio(_ a: Int, _ b: Int) -> Double {
            EngineBench.median(zip(tokensPerSecond[a], tokensPerSecond[b]).map { $0 / $1 })
        }
        report(["name": "kernels_step_ratios", "runs": runs, "step_32_over_1": ratio(1, 0),
                "one_adapter_over_no_adapter": ratio(2, 1), "distinct_adapters_over_no_adapter": ratio(3, 1),
                "products_share_of_step_32": EngineBench.median(productsShare),
                "attention_share_of_step_32": EngineBench.median(attentionShare)])
    }

    private func report(_ fields: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
