import Kernels
import Model
import Testing

/// Top-1 next-token agreement with exact fp32 math (an independent numpy forward on the
/// dequantized weights) over an original corpus of prose, technical text, a ChatML
/// dialogue, code and numbered lists: 3,110 positions in seven documents.
@Suite struct AccuracyTests {
    struct Agreement {
        var positions = 0
        var agreements = 0
        var fraction: Double { Double(agreements) / Double(max(1, positions)) }
    }

    /// rowsPerPass nil runs each document as one prompt.
    func agreement(rowsPerPass: Int?, documents: [[String: Any]],
                   variant: DecodeVariant = .interleaved, kvPrecision: KVPrecision = .f32) throws -> Agreement {
        let shared = try SharedModel.get()
        var result = Agreement()
        let longest = documents.map { ($0["ids"] as! [Int]).count }.max()!
        let scorer = SequenceScorer(model: shared.model(variant), maxTokens: longest, rowsPerPass: rowsPerPass,
                                    kvPrecision: kvPrecision)
        for document in documents {
            let ids = document["ids"] as! [Int]
            let reference = document["top1"] as! [Int]
            let top = scorer.topTokens(tokens: ids)
            result.positions += ids.count
            result.agreements += zip(top, reference).filter { $0 == $1 }.count
        }
        return result
    }

    func documents() throws -> [[String: Any]] {
        try Fixtures.json("accuracy_reference_fp32.json")["documents"] as! [[String: Any]]
    }

    @Test func promptPathAgreesWithFp32OnTheCorpus() throws {
        // Given the corpus and its fp32 top-1 ids at every position
        let documents = try documents()
        // When each document runs as one prompt with logits at every position
        let result = try agreement(rowsPerPass: nil, documents: documents)
        // Then at least 99.5% of the 3,110 positions have the reference's top-1
        #expect(result.positions >= 2000)
        #expect(result.fraction >= 0.995, "agreement \(result.agreements)/\(result.positions)")
    }

    @Test func f16CacheAgreesWithFp32OnTheCorpus() throws {
        // Given the corpus and its fp32 top-1 ids at every position
        let documents = try documents()
        // When each document runs as one prompt over an f16 KV cache
        let result = try agreement(rowsPerPass: nil, documents: documents, kvPrecision: .f16)
        // Then rounding keys and values to f16 keeps the exact cache's bar: 99.5%
        #expect(result.fraction >= 0.995, "agreement \(result.agreements)/\(result.positions)")
    }

    @Test(arguments: DecodeVariant.allCases)
    func decodePathAgreesWithFp32(variant: DecodeVariant) throws {
        // Given the ChatML dialogue of the corpus (one token per pass is slow: one document)
        let documents = try documents().filter { $0["id"] as! String == "03-dialogue" }
        #expect(documents.count == 1)
        // When they are fed one token per forward pass, as generated tokens are
        let result = try agreement(rowsPerPass: 1, documents: documents, variant: variant)
        // Then at least 99.5% of the positions have the reference's top-1
        #expect(result.fraction >= 0.995, "agreement \(result.agreements)/\(result.positions)")
    }

    @Test func corpusIdsAreGraftTokenization() throws {
        // Given the corpus texts and the ids the reference was computed on
        let shared = try SharedModel.get()
        let texts = try Fixtures.jsonLines("accuracy_corpus.jsonl")
        let documents = try documents()
        #expect(texts.count == documents.count)
        for (text, document) in zip(texts, documents) {
            // When Graft's tokenizer encodes the text (special tokens parsed, no BOS)
            let ids = shared.tokenizer.encode(text["text"] as! String, parseSpecialTokens: true, addBOS: false)
            // Then it gives the reference's ids
            #expect(ids == document["ids"] as! [Int], "document \(document["id"]!)")
        }
    }
}
