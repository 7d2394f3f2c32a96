import ModelFormats

/// Hyper-parameters of a llama-architecture model, read from GGUF metadata under the
/// architecture's own key prefix (`llama.block_count`, …).
public struct LlamaConfig: Sendable, Equatable {
    public var architecture: String
    public var dim: Int
    public var hiddenDim: Int
    public var nLayers: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int
    public var ropeDim: Int
    public var ropeBase: Float
    public var normEps: Float
    public var vocabSize: Int
    public var contextLength: Int

    public var qDim: Int { nHeads * headDim }
    public var kvDim: Int { nKVHeads * headDim }

    /// Architectures whose tensors and math are the llama layout Graft implements.
    public static let supportedArchitectures: Set<String> = ["llama"]

    public init(architecture: String, dim: Int, hiddenDim: Int, nLayers: Int, nHeads: Int,
                nKVHeads: Int, headDim: Int, ropeDim: Int, ropeBase: Float, normEps: Float,
                vocabSize: Int, contextLength: Int) {
        self.architecture = architecture
        self.dim = dim
        self.hiddenDim = hiddenDim
        self.nLayers = nLayers
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.headDim = headDim
        self.ropeDim = ropeDim
        self.ropeBase = ropeBase
        self.normEps = normEps
        self.vocabSize = vocabSize
        self.contextLength = contextLength
    }

    public init(gguf: GGUFFile) throws {
        let arch = try gguf.requireString("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw ModelError.unsupported("architecture '\(arch)' (supported: \(Self.supportedArchitectures.sorted().joined(separator: ", ")))")
        }
        func key(_ suffix: String) -> String { "\(arch).\(suffix)" }
        if let scaling = gguf.metadata[key("rope.scaling.type")]?.string, scaling != "none" {
            throw ModelError.unsupported("rope scaling '\(scaling)'")
        }
        let dim = try gguf.requireInt(key("embedding_length"))
        let nHeads = try gguf.requireInt(key("attention.head_count"))
        let headDim = gguf.metadata[key("attention.key_length")]?.int ?? (nHeads > 0 ? dim / nHeads : 0)
        let vocab = gguf.metadata[key("vocab_size")]?.int
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.array?.count
            ?? gguf.tensor(named: "token_embd.weight")?.dims.last
        guard let vocab else { throw ModelError.invalid("cannot determine the vocabulary size") }
        self.init(
            architecture: arch, dim: dim,
            hiddenDim: try gguf.requireInt(key("feed_forward_length")),
            nLayers: try gguf.requireInt(key("block_count")),
            nHeads: nHeads,
            nKVHeads: gguf.metadata[key("attention.head_count_kv")]?.int ?? nHeads,
            headDim: headDim,
            ropeDim: gguf.metadata[key("rope.dimension_count")]?.int ?? headDim,
            ropeBase: gguf.metadata[key("rope.freq_base")]?.float ?? 10_000,
            normEps: try gguf.requireFloat(key("attention.layer_norm_rms_epsilon")),
            vocabSize: vocab,
            contextLength: gguf.metadata[key("context_length")]?.int ?? 2048)
        try validate()
    }

    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw ModelError.invalid(what) } }
        try check(dim > 0 && hiddenDim > 0 && nLayers > 0 && vocabSize > 0, "dimensions must be positive")
        try check(nHeads > 0 && nKVHeads > 0 && nHeads % nKVHeads == 0, "head_count \(nHeads) must be a multiple of head_count_kv \(nKVHeads)")
        try check(headDim > 0 && headDim % 2 == 0, "head dimension \(headDim) must be even")
        try check(ropeDim > 0 && ropeDim <= headDim && ropeDim % 2 == 0, "rope dimension \(ropeDim) invalid for head dimension \(headDim)")
        try check(contextLength > 0, "context length must be positive")
    }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case unsupported(String)
    case invalid(String)
    case missingTensor(String)
    case tensorShape(name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .unsupported(let what): return "unsupported model: \(what)"
        case .invalid(let what): return "invalid model: \(what)"
        case .missingTensor(let name): return "model is missing tensor '\(name)'"
        case .tensorShape(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        }
    }
}
