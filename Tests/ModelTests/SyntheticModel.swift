import Foundation
import Kernels
import Model
import ModelFormats

/// A tiny llama model with random weights, written as a GGUF file by the test, plus a
/// naive double-precision forward pass over its dequantized weights to check against.
struct SyntheticModel {
    static let config = LlamaConfig(architecture: "llama", dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4,
                                    nKVHeads: 2, headDim: 16, ropeDim: 16, ropeBase: 10_000, normEps: 1e-5,
                                    vocabSize: 128, contextLength: 64)
    var config: LlamaConfig { Self.config }
    let path: String

    /// Writes the model with projections in `projectionType` and a Q8_0 embedding.
    init(seed: UInt64, projectionType: GGMLType = .q4_1) throws {
        var rng = SplitMix(seed: seed)
        let c = Self.config
        var w = GGUFWriter()
        w.add(key: "general.architecture", .string("llama"))
        w.add(key: "llama.embedding_length", .uint32(UInt32(c.dim)))
        w.add(key: "llama.feed_forward_length", .uint32(UInt32(c.hiddenDim)))
        w.add(key: "llama.block_count", .uint32(UInt32(c.nLayers)))
        w.add(key: "llama.attention.head_count", .uint32(UInt32(c.nHeads)))
        w.add(key: "llama.attention.head_count_kv", .uint32(UInt32(c.nKVHeads)))
        w.add(key: "llama.rope.freq_base", .float32(c.ropeBase))
        w.add(key: "llama.attention.layer_norm_rms_epsilon", .float32(c.normEps))
        w.add(key: "llama.context_length", .uint32(UInt32(c.contextLength)))
        w.add(key: "llama.vocab_size", .uint32(UInt32(c.vocabSize)))
        func matrix(_ name: String, rows: Int, cols: Int, type: GGMLType, scale: Float) {
            let values = (0..<(rows * cols)).map { _ in rng.float() * scale }
            w.addTensor(name: name, dims: [cols, rows], type: type, data: Self.encode(values, type: type))
        }
        func vector(_ name: String, count: Int) {
            let values = (0..<count).map { _ in 1 + 0.2 * rng.float() }
            w.addTensor(name: name, dims: [count], type: .f32, data: Self.encode(values, type: .f32))
        }
        matrix("token_embd.weight", rows: c.vocabSize, cols: c.dim, type: .q8_0, scale: 1)
        vector("output_norm.weight", count: c.dim)
        for l in 0..<c.nLayers {
            vector("blk.\(l).attn_norm.weight", count: c.dim)
            vector("blk.\(l).ffn_norm.weight", count: c.dim)
            matrix("blk.\(l).attn_q.weight", rows: c.qDim, cols: c.dim, type: projectionType, scale: 0.3)
            matrix("blk.\(l).attn_k.weight", rows: c.kvDim, cols: c.dim, type: projectionType, scale: 0.3)
            matrix("blk.\(l).attn_v.weight", rows: c.kvDim, cols: c.dim, type: projectionType, scale: 0.3)
            matrix("blk.\(l).attn_output.weight", rows: c.dim, cols: c.qDim, type: projectionType, scale: 0.2)
            matrix("blk.\(l).ffn_gate.weight", rows: c.hiddenDim, cols: c.dim, type: projectionType, scale: 0.2)
            matrix("blk.\(l).ffn_up.weight", rows: c.hiddenDim, cols: c.dim, type: projectionType, scale: 0.2)
            matrix("blk.\(l).ffn_down.weight", rows: c.dim, cols: c.hiddenDim, type: projectionType, scale: 0.2)
        }
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("graft-synthetic-\(seed)-\(projectionType)-\(UUID().uuidString).gguf").path
        try w.write(to: path)
    }

    static func encode(_ values: [Float], type: GGMLType) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
        values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { dst in
                switch type {
                case .q4_1: quantizeRowQ4_1(out: dst.baseAddress!, src: src.baseAddress!, count: values.count)
                case .q8_0: quantizeRowQ8_0(out: dst.baseAddress!, src: src.baseAddress!, count: values.count)
                case .q4_0: quantizeRowQ4_0(out: dst.baseAddress!, src: src.baseAddress!, count: values.count)
                case .f32: dst.copyMemory(from: UnsafeRawBufferPointer(src))
                default: fatalError("synthetic model does not write \(type)")
                }
            }
        }
        return bytes
    }

    /// Logits at every position of `tokens`, in Double, from the dequantized weights.
    func referenceLogits(_ gguf: GGUFFile, tokens: [Int]) -> [[Double]] {
        let c = config
        func weight(_ name: String) -> [Double] { gguf.dequantize(gguf.tensor(named: name)!).map(Double.init) }
        func matvec(_ w: [Double], _ x: [Double], rows: Int) -> [Double] {
            let cols = x.count
            return (0..<rows).map { r in (0..<cols).reduce(0.0) { $0 + w[r * cols + $1] * x[$1] } }
        }
        func rmsNorm(_ x: [Double], _ w: [Double]) -> [Double] {
            let rms = (x.map { $0 * $0 }.reduce(0, +) / Double(x.count) + Double(c.normEps)).squareRoot()
            return zip(x, w).map { $0 / rms * $1 }
        }
        func rope(_ v: inout [Double], pos: Int, heads: Int) {
            for h in 0..<heads {
                for i in 0..<(c.headDim / 2) {
                    let theta = Double(pos) * pow(Double(c.ropeBase), -Double(2 * i) / Double(c.headDim))
                    let a = v[h * c.headDim + 2 * i], b = v[h * c.headDim + 2 * i + 1]
                    v[h * c.headDim + 2 * i] = a * cos(theta) - b * sin(theta)
                    v[h * c.headDim + 2 * i + 1] = a * sin(theta) + b * cos(theta)
                }
            }
        }
        let embed = weight("token_embd.weight")
        var xs = tokens.map { Array(embed[($0 * c.dim)..<(($0 + 1) * c.dim)]) }
        for l in 0..<c.nLayers {
            let attnNorm = weight("blk.\(l).attn_norm.weight"), ffnNorm = weight("blk.\(l).ffn_norm.weight")
            let wq = weight("blk.\(l).attn_q.weight"), wk = weight("blk.\(l).attn_k.weight")
            let wv = weight("blk.\(l).attn_v.weight"), wo = weight("blk.\(l).attn_output.weight")
            let wg = weight("blk.\(l).ffn_gate.weight"), wu = weight("blk.\(l).ffn_up.weight")
            let wd = weight("blk.\(l).ffn_down.weight")
            var qs: [[Double]] = [], ks: [[Double]] = [], vs: [[Double]] = []
            for (p, x) in xs.enumerated() {
                let n = rmsNorm(x, attnNorm)
                var q = matvec(wq, n, rows: c.qDim), k = matvec(wk, n, rows: c.kvDim)
                rope(&q, pos: p, heads: c.nHeads)
                rope(&k, pos: p, heads: c.nKVHeads)
                qs.append(q); ks.append(k); vs.append(matvec(wv, n, rows: c.kvDim))
            }
            for p in xs.indices {
                var att = [Double](repeating: 0, count: c.qDim)
                for h in 0..<c.nHeads {
                    let kvh = h / (c.nHeads / c.nKVHeads)
                    let scores = (0...p).map { j in
                        (0..<c.headDim).reduce(0.0) { $0 + qs[p][h * c.headDim + $1] * ks[j][kvh * c.headDim + $1] } / Double(c.headDim).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let total = e.reduce(0, +)
                    for j in 0...p {
                        for d in 0..<c.headDim { att[h * c.headDim + d] += e[j] / total * vs[j][kvh * c.headDim + d] }
                    }
                }
                xs[p] = zip(xs[p], matvec(wo, att, rows: c.dim)).map(+)
                let n = rmsNorm(xs[p], ffnNorm)
                let g = matvec(wg, n, rows: c.hiddenDim), u = matvec(wu, n, rows: c.hiddenDim)
                let hidden = zip(g, u).map { $0 / (1 + exp(-$0)) * $1 }
                xs[p] = zip(xs[p], matvec(wd, hidden, rows: c.dim)).map(+)
            }
        }
        let outNorm = weight("output_norm.weight")
        return xs.map { matvec(embed, rmsNorm($0, outNorm), rows: c.vocabSize) }
    }
}

/// SplitMix64 floats in [-1, 1), reproducible across runs.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func float() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / 8_388_608.0 - 1
    }
}
