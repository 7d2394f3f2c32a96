// The tokenizer data of a model as GGUF stores it (tokenizer.ggml.*). `init(gguf:)` reads
// it from a GGUF file; the memberwise init serves tests and other sources. `Tokenizer`
// validates it.

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`).
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

public struct TokenizerVocabulary: Sendable {
    /// Token texts; for byte-level BPE these are GPT-2 byte-to-unicode encoded ("Ġthe").
    public var tokens: [String]
    /// One `TokenType` raw value per token; empty means every token is normal.
    public var tokenTypes: [Int]
    /// Merge rules "left right", highest priority first.
    public var merges: [String]
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var unknownTokenId: Int?
    public var paddingTokenId: Int?
    /// `tokenizer.ggml.add_bos_token`: whether prompts of this model start with BOS.
    public var addBOS: Bool
    /// `tokenizer.ggml.pre`, e.g. "smollm", "gpt2", "llama-bpe".
    public var preTokenizer: String
    /// `tokenizer.ggml.model`; only "gpt2" (byte-level BPE) is supported.
    public var model: String

    public init(tokens: [String], tokenTypes: [Int], merges: [String], bosTokenId: Int?, eosTokenId: Int?,
                unknownTokenId: Int?, paddingTokenId: Int?, addBOS: Bool, preTokenizer: String,
                model: String = "gpt2") {
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.unknownTokenId = unknownTokenId
        self.paddingTokenId = paddingTokenId
        self.addBOS = addBOS
        self.preTokenizer = preTokenizer
        self.model = model
    }
}

public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case unsupportedModel(String)
    case unsupportedPreTokenizer(String)
    case missingMetadata(String)
    case emptyVocabulary
    case tokenTypeCountMismatch(tokens: Int, tokenTypes: Int)
    case malformedMerge(index: Int, merge: String)
    case mergeTokenNotInVocabulary(index: Int, merge: String, token: String)
    case specialTokenIdOutOfRange(name: String, id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .unsupportedModel(let m):
            return "unsupported tokenizer model '\(m)': only byte-level BPE ('gpt2') is supported"
        case .unsupportedPreTokenizer(let p):
            return "unsupported pre-tokenizer '\(p)': supported are \(PreTokenizer.supportedNames.sorted().joined(separator: ", "))"
        case .missingMetadata(let key):
            return "GGUF metadata key \(key) is missing or has the wrong type"
        case .emptyVocabulary:
            return "the tokenizer vocabulary is empty"
        case .tokenTypeCountMismatch(let t, let tt):
            return "vocabulary has \(t) tokens but \(tt) token types"
        case .malformedMerge(let i, let m):
            return "merge #\(i) '\(m)' is not of the form 'left right'"
        case .mergeTokenNotInVocabulary(let i, let m, let t):
            return "merge #\(i) '\(m)': token '\(t)' is not in the vocabulary"
        case .specialTokenIdOutOfRange(let name, let id, let n):
            return "\(name) token id \(id) is outside the vocabulary (size \(n))"
        }
    }
}
