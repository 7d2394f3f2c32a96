import Testing
import Adapters
import Kernels
import Model

/// The forward pass against exact fp32 math (PyTorch on the dequantized weights, in
/// the Hugging Face layout, so the Q/K permutation is checked too).
@Suite struct ReferenceLogitsTests {
    func topIndices(_ values: [Float], _ k: Int) -> [Int] {
        values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k).map { $0 }
    }

    @Test func allPositionLogitsMatchFp32Reference() throws {
        // Given the reference prompt and its full fp32 logits
        let shared = try SharedModel.get()
        let reference = try Fixtures.json("logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("logits_fp32_all_positions_f32le.bin")
        let vocab = shared.model.config.vocabSize
        #expect(expected.count == ids.count * vocab)
        // When the model runs the prompt
        let logits = shared.logits(tokens: ids)
        // Then every position is within 1e-2 of the reference and argmax agrees
        for (p, row) in logits.enumerated() {
            let want = Array(expected[(p * vocab)..<((p + 1) * vocab)])
            let maxDiff = zip(row, want).map { abs($0 - $1) }.max()!
            #expect(maxDiff < 1e-2, "position \(p): max abs logit difference \(maxDiff)")
            #expect(topIndices(row, 1) == [(reference["all_positions_argmax"] as! [Int])[p]])
        }
        // And the last position's top-10 order is the reference's
        let top = reference["last_position_top10"] as! [String: Any]
        #expect(topIndices(logits.last!, 10) == top["ids"] as! [Int])
    }

    @Test(arguments: DecodeVariant.allCases)
    func decodePathLogitsMatchFp32Reference(variant: DecodeVariant) throws {
        // Given the reference prompt and its full fp32 logits
        let shared = try SharedModel.get()
        let reference = try Fixtures.json("logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("logits_fp32_all_positions_f32le.bin")
        let vocab = shared.model.config.vocabSize
        // When it is fed one token per forward pass, as generated tokens are
        let logits = shared.logits(tokens: ids, chunk: 1, variant: variant)
        // Then every position is within 1e-2 of the reference (int16 activations: 5e-2;
        // measured 2.5e-2 at the first positions, whose activations have the widest
        // range) and argmax agrees
        let tolerance: Float = variant == .int16 ? 5e-2 : 1e-2
        for (p, row) in logits.enumerated() {
            let want = Array(expected[(p * vocab)..<((p + 1) * vocab)])
            let maxDiff = zip(row, want).map { abs($0 - $1) }.max()!
            #expect(maxDiff < tolerance, "position \(p): max abs logit difference \(maxDiff)")
            #expect(topIndices(row, 1) == [(reference["all_positions_argmax"] as! [Int])[p]])
        }
    }

    @Test(arguments: [false, true])
    func chunkedPrefillEqualsOnePass(withAdapter: Bool) throws {
        // Given a 40-token prompt, without and with a random rank-8 adapter
        let shared = try SharedModel.get()
        let adapter = withAdapter ? LoRAAdapter.random(shape: shared.model.adapterShape, rank: 8, seed: 5) : nil
        let tokens = shared.tokenizer.encode("The lighthouse keeper climbed the stairs every evening to light the lamp, and the ships passed safely by the rocks below.", parseSpecialTokens: false, addBOS: false)
        // When it runs in one pass and in chunks of 7 rows (chunks read earlier chunks' KV)
        let whole = shared.logits(tokens: tokens, adapter: adapter)
        let chunked = shared.logits(tokens: tokens, chunk: 7, adapter: adapter)
        // Then the logits are bit-identical at every position: no row's arithmetic
        // depends on how its prompt was cut
        for p in tokens.indices {
            #expect(whole[p] == chunked[p], "position \(p)")
        }
    }
}
