import Adapters
import Model
import Testing

/// The forward pass with a PEFT adapter against PEFT's own fp32 logits: checks the
/// safetensors import, the q/k row permutation, the scale and the side path.
@Suite struct AdapterReferenceTests {
    @Test func peftAdapterLogitsMatchReference() throws {
        // Given the reference adapter (r=8, alpha=16, all seven projections)
        let shared = try SharedModel.get()
        let adapter = try LoRAAdapter.loadPEFT(directory: Fixtures.url("peft_adapter_r8").path,
                                               base: shared.model.adapterShape)
        let reference = try Fixtures.json("peft_adapter_r8/logits_fp32.json")
        let ids = reference["token_ids"] as! [Int]
        let expected = try Fixtures.float32LittleEndian("peft_adapter_r8/logits_fp32_last_position_f32le.bin")
        // When the prompt runs with the adapter in one chunk (gemm path) and token by
        // token (rowwise path)
        for chunk in [ids.count, 1] {
            let logits = shared.logits(tokens: ids, chunk: chunk, adapter: adapter).last!
            // Then the last position is within 1e-2 of PEFT's, with the same top-10 order
            let maxDiff = zip(logits, expected).map { abs($0 - $1) }.max()!
            #expect(maxDiff < 1e-2, "chunk \(chunk): max abs logit difference \(maxDiff)")
            let top = reference["last_position_top10_with_adapter"] as! [String: Any]
            let order = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10)
            #expect(Array(order) == top["ids"] as! [Int])
        }
    }
}
