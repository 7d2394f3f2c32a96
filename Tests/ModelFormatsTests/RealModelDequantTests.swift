import Foundation
import Kernels
import Testing
import ModelFormats

// Checks the reader and the dequantizers against values that an independent implementation
// (gguf-py / numpy) produced from the same model file: Tests/fixtures/dequant.json.
// Every field is optional so entries may carry any subset of checks.
private struct DequantReference: Decodable {
    let ggmlType: String?
    let ggmlNe: [Int]?
    let numpyShape: [Int]?
    let dataOffsetInFile: Int?
    let first64: [Double]?
    let row1First16: [Double]?
    let sumF64: Double?
    let sumsqF64: Double?
    let rawFirstBlockBytesHex: String?

    enum CodingKeys: String, CodingKey {
        case ggmlType = "ggml_type", ggmlNe = "ggml_ne", numpyShape = "numpy_shape"
        case dataOffsetInFile = "data_offset_in_file", first64, row1First16 = "row1_first16"
        case sumF64 = "sum_f64", sumsqF64 = "sumsq_f64", rawFirstBlockBytesHex = "raw_first_block_bytes_hex"
    }
}

@Suite struct RealModelDequantTests {
    // This file is <root>/Tests/ModelFormatsTests/RealModelDequantTests.swift.
    private static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The model file; a missing model fails the test rather than skipping it, so CI cannot pass without it.
    private func openModel() throws -> GGUFFile {
        let path = ProcessInfo.processInfo.environment["GRAFT_MODEL"]
            ?? Self.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try #require(FileManager.default.fileExists(atPath: path),
                     "model not found at \(path): run scripts/setup.sh (or set GRAFT_MODEL)")
        return try GGUFFile(path: path)
    }

    @Test func metadataDescribesSmolLM2() throws {
        // Given the real model
        let file = try openModel()
        // Then the header and the llama hyperparameters are those of SmolLM2-135M
        #expect(file.version == 3 && file.alignment == 32)
        #expect(file.tensors.count == 272 && file.metadataKeys.count == 33)
        #expect(try file.requireString("general.architecture") == "llama")
        #expect(try file.requireInt("llama.block_count") == 30)
        #expect(try file.requireInt("llama.context_length") == 8192)
        #expect(try file.requireInt("llama.embedding_length") == 576)
        #expect(try file.requireInt("llama.feed_forward_length") == 1536)
        #expect(try file.requireInt("llama.attention.head_count") == 9)
        #expect(try file.requireInt("llama.attention.head_count_kv") == 3)
        #expect(try file.requireInt("llama.rope.dimension_count") == 64)
        #expect(try file.requireFloat("llama.rope.freq_base") == 100_000)
        #expect(try file.requireFloat("llama.attention.layer_norm_rms_epsilon") == 1e-5)
        #expect(try file.requireString("tokenizer.ggml.model") == "gpt2")
        #expect(file.metadata["tokenizer.ggml.tokens"]?.stringArray?.count == 49152)
        #expect(file.metadata["tokenizer.ggml.token_type"]?.intArray?.count == 49152)
        #expect(file.metadata["tokenizer.ggml.merges"]?.stringArray?.count == 48900)
        #expect(try file.requireInt("tokenizer.ggml.bos_token_id") == 1)
        #expect(try file.requireInt("tokenizer.ggml.eos_token_id") == 2)
        #expect(file.metadata["tokenizer.ggml.add_bos_token"]?.bool == false)
    }

    @Test func tensorsMatchReferenceFixture() throws {
        // Given the real model and the reference values
        let file = try openModel()
        let fixtureURL = Self.packageRoot.appendingPathComponent("Tests/fixtures/dequant.json")
        // JSONDecoder, not JSONSerialization: on Linux the latter misrounds some doubles by an ulp,
        // which would break the exact comparisons below.
        let fixture = try JSONDecoder().decode([String: DequantReference].self, from: Data(contentsOf: fixtureURL))
        var checked = 0
        for (name, expected) in fixture.sorted(by: { $0.key < $1.key }) {
            // Entries without a ggml type describe Hugging Face tensors (after the q/k un-permute);
            // they are for the model loader's tests, not a GGUF tensor.
            guard let typeName = expected.ggmlType else { continue }
            // When the tensor is looked up and dequantized
            let info = try #require(file.tensor(named: name), "tensor \(name) missing from the model")
            try check(info, in: file, against: expected, typeName: typeName)
            checked += 1
        }
        // Then every GGUF tensor of the fixture was found and matched
        #expect(checked >= 6)
    }

    private func check(_ info: GGUFTensorInfo, in file: GGUFFile, against expected: DequantReference, typeName: String) throws {
        let name = info.name
        #expect(info.type.description == typeName, "\(name) type")
        if let ne = expected.ggmlNe { #expect(info.dims == ne, "\(name) ne") }
        if let shape = expected.numpyShape { #expect(info.dims.reversed() == shape, "\(name) numpy shape") }
        if let offset = expected.dataOffsetInFile { #expect(file.dataOffset + info.offset == offset, "\(name) offset") }
        if let hex = expected.rawFirstBlockBytesHex {
            let raw = UnsafeRawBufferPointer(start: file.data(for: info), count: hex.count / 2)
            #expect(raw.map { String(format: "%02x", $0) }.joined() == hex, "\(name) raw bytes")
        }

        let values = file.dequantize(info)
        // The reference values are exactly representable (f16 scale × small integer + f16 min),
        // so equality is exact.
        if let first = expected.first64 {
            #expect(values.prefix(first.count).map(Double.init) == first, "\(name) first values")
        }
        if let row1 = expected.row1First16 {
            let start = info.dims[0]
            #expect(values[start..<(start + row1.count)].map(Double.init) == row1, "\(name) row 1")
        }
        var sum = 0.0, sumsq = 0.0
        values.withUnsafeBufferPointer { v in
            for x in v {
                sum += Double(x)
                sumsq += Double(x) * Double(x)
            }
        }
        if let s = expected.sumF64 { #expect(abs(sum - s) <= 1e-6 * max(abs(s), 1), "\(name) sum \(sum) vs \(s)") }
        if let s = expected.sumsqF64 { #expect(abs(sumsq - s) <= 1e-6 * abs(s), "\(name) sumsq \(sumsq) vs \(s)") }
    }
}
