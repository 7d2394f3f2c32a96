import ModelFormats

// Reading the tokenizer.ggml.* metadata keys of a GGUF file (names as in llama.cpp's
// LLM_KV_TOKENIZER_*). Absent optional keys take llama.cpp's defaults.
extension TokenizerVocabulary {
    public init(gguf: GGUFFile) throws {
        let m = gguf.metadata
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else {
            throw TokenizerError.missingMetadata("tokenizer.ggml.tokens")
        }
        let model = m["tokenizer.ggml.model"]?.string ?? "gpt2"
        guard let merges = m["tokenizer.ggml.merges"]?.stringArray ?? (model == "gpt2" ? nil : []) else {
            throw TokenizerError.missingMetadata("tokenizer.ggml.merges")
        }
        self.init(
            tokens: tokens,
            tokenTypes: m["tokenizer.ggml.token_type"]?.intArray ?? [],
            merges: merges,
            bosTokenId: m["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenId: m["tokenizer.ggml.eos_token_id"]?.int,
            unknownTokenId: m["tokenizer.ggml.unknown_token_id"]?.int,
            paddingTokenId: m["tokenizer.ggml.padding_token_id"]?.int,
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            preTokenizer: m["tokenizer.ggml.pre"]?.string ?? "default",
            model: model)
    }
}
