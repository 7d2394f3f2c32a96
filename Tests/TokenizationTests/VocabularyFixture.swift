import Foundation
import ModelFormats
import Testing
import Tokenization

/// The real SmolLM2 vocabulary, read from the model's GGUF metadata, and the reference
/// fixtures; paths are found from this file so tests run from any working directory.
enum VocabularyFixture {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `GRAFT_MODEL` overrides the default model; a missing file fails the test, never skips it.
    static func modelPath() throws -> String {
        let path = ProcessInfo.processInfo.environment["GRAFT_MODEL"]
            ?? packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("model not found at \(path): run scripts/setup.sh (or set GRAFT_MODEL)")
            throw CocoaError(.fileNoSuchFile)
        }
        return path
    }

    struct MissingKey: Error, CustomStringConvertible {
        let key: String
        var description: String { "GGUF metadata key \(key) is missing or has the wrong type" }
    }

    /// The tokenizer.ggml.* keys of `gguf` as a vocabulary.
    static func vocabulary(from gguf: GGUFFile) throws -> TokenizerVocabulary {
        let m = gguf.metadata
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else { throw MissingKey(key: "tokenizer.ggml.tokens") }
        guard let merges = m["tokenizer.ggml.merges"]?.stringArray else { throw MissingKey(key: "tokenizer.ggml.merges") }
        return TokenizerVocabulary(
            tokens: tokens,
            tokenTypes: m["tokenizer.ggml.token_type"]?.intArray ?? [],
            merges: merges,
            bosTokenId: m["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenId: m["tokenizer.ggml.eos_token_id"]?.int,
            unknownTokenId: m["tokenizer.ggml.unknown_token_id"]?.int,
            paddingTokenId: m["tokenizer.ggml.padding_token_id"]?.int,
            addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
            preTokenizer: m["tokenizer.ggml.pre"]?.string ?? "default",
            model: m["tokenizer.ggml.model"]?.string ?? "gpt2")
    }

    private static let loaded: Result<Tokenizer, any Error> = Result {
        try Tokenizer(vocabulary: vocabulary(from: GGUFFile(path: modelPath())))
    }

    /// The model's tokenizer, loaded once for all tests.
    static func tokenizer() throws -> Tokenizer {
        _ = try modelPath()  // records the failure in every test that needs the model
        return try loaded.get()
    }

    static func jsonLines(_ name: String) throws -> [[String: Any]] {
        let url = packageRoot.appendingPathComponent("Tests/fixtures").appendingPathComponent(name)
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }
}
