import Foundation
import ModelFormats
import Testing
import Tokenization

/// The real SmolLM2 tokenizer, read from the model's GGUF metadata, and the reference
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

    private static let loaded: Result<Tokenizer, any Error> = Result {
        try Tokenizer(vocabulary: TokenizerVocabulary(gguf: GGUFFile(path: modelPath())))
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
