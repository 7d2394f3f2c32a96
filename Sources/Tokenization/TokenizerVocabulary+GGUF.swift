import ModelFormats

extension TokenizerVocabulary {
    /// The `tokenizer.ggml.*` metadata of a GGUF file.
    public init(gguf: GGUFFile) throws {
        let m = gguf.metadata
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else {
            throw GGUFError.missingKey("tokenizer.ggml.tokens")
        }
        self.init(
            tokens: tokens,
            tokenTypes: m["tokenizer.ggml.token_type"]?.intArray ?? [],
            merges: m["tokenizer.ggml.merges"]?.stringArray ?? [],
            bosTokenId: m["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenId: m["tokenizer.ggml.eos_token_id"]?.int,
            unknownTokenId: m["tokenizer.ggml.unknown_token_id"]?.int,
            paddingTokenId: m["tokenizer.ggml.padding_token_id"]?.int,
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            preTokenizer: m["tokenizer.ggml.pre"]?.string ?? "default",
            model: try gguf.requireString("tokenizer.ggml.model"))
    }
}
