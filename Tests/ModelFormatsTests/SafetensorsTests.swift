import Foundation
import Kernels
import ModelFormats
import Testing

private let fixturePath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/peft_adapter_r8/adapter_model.safetensors").path

// A file with a hand-written header, for corruptions the writer cannot produce.
private func rawFile(header: String, data: [UInt8]) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
}

private func parseError(_ bytes: [UInt8]) -> SafetensorsError? {
    do {
        _ = try SafetensorsFile(bytes: bytes)
        return nil
    } catch {
        return error
    }
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

@Suite struct SafetensorsTests {
    @Test func roundTripKeepsValuesShapesAndMetadata() throws {
        // Given tensors of each written dtype, a scalar, an empty tensor and awkward metadata
        let values: [Float] = [1.5, -2, 0.1, 3e-8, 65504, -0.0, 7, 1e-3]
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt", "note": "quote \" slash / tab \t newline \n bell \u{07} é🦙"]
        writer.add(name: "f32.matrix", shape: [2, 4], floats: values)
        writer.add(name: "f16.vector", shape: [8], f16: values)
        writer.add(name: "bf16.cube", shape: [2, 2, 2], bf16: values)
        writer.add(name: "scalar", shape: [], floats: [42])
        writer.add(name: "empty", shape: [0, 3], floats: [])

        // When it is serialized and read back
        let bytes = writer.serialize()
        let file = try SafetensorsFile(bytes: bytes)

        // Then the data starts at a multiple of 8 and everything survives
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + headerLength) % 8 == 0)
        #expect(file.metadata == writer.metadata)
        #expect(file.tensorNames == ["bf16.cube", "empty", "f16.vector", "f32.matrix", "scalar"])
        #expect(try file.floats("f32.matrix") == values)
        #expect(try file.floats("f16.vector") == values.map { fp16ToFp32(fp32ToFp16($0)) })
        #expect(try file.floats("bf16.cube") == values.map { bf16ToFp32(fp32ToBf16($0)) })
        #expect(try file.floats("scalar") == [42])
        #expect(try file.floats("empty") == [])
        let info = try #require(file.tensorInfo("bf16.cube"))
        #expect(info.dtype == .bf16 && info.shape == [2, 2, 2] && info.byteCount == 16 && info.elementCount == 8)
        #expect(file.tensorInfo("empty")?.shape == [0, 3])
        #expect(file.tensorInfo("missing") == nil)
    }

    @Test func writerMatchesThePythonLibraryByteForByte() throws {
        // Given the bytes of safetensors 0.8.0 (Python):
        //   save({"w": np.array([[1.5,-2],[0.25,3e-8]], np.float32),
        //         "h": np.array([1,-0.5,65504], np.float16), "a": np.array([7], np.float16)},
        //        metadata={"format": "pt"})
        let python = hexBytes(
            "c8000000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c2277223a7b22647479"
            + "7065223a22463332222c227368617065223a5b322c325d2c22646174615f6f666673657473223a5b302c31365d7d2c2261"
            + "223a7b226474797065223a22463136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b31362c31"
            + "385d7d2c2268223a7b226474797065223a22463136222c227368617065223a5b335d2c22646174615f6f66667365747322"
            + "3a5b31382c32345d7d7d20200000c03f000000c00000803e59d900330047003c00b8ff7b")

        // When the same tensors go through the writer
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt"]
        writer.add(name: "h", shape: [3], f16: [1, -0.5, 65504])
        writer.add(name: "w", shape: [2, 2], floats: [1.5, -2, 0.25, 3e-8])
        writer.add(name: "a", shape: [1], f16: [7])

        // Then the bytes are identical (wider dtypes first, then by name; space padding)
        #expect(writer.serialize() == python)
        let file = try SafetensorsFile(bytes: python)
        #expect(try file.floats("h") == [1, -0.5, 65504])
        #expect(file.tensorInfo("a")?.dataOffsets == 16..<18)
    }

    @Test func readsTheReferenceAdapter() throws {
        // Given the PEFT adapter in Tests/fixtures (written by PEFT 0.21.2 / safetensors)
        let file = try SafetensorsFile(path: fixturePath)

        // Then the header matches, and values match safetensors.numpy.load_file (safetensors
        // 0.8.0, numpy 2.4.6), printed with repr(a[i, j]) and float(a.astype(np.float64).sum())
        #expect(file.tensorNames.count == 420)
        #expect(file.metadata == ["format": "pt"])
        let downA = "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"
        let info = try #require(file.tensorInfo(downA))
        #expect(info.dtype == .f32 && info.shape == [8, 1536] && info.dataOffsets == 0..<49152)
        let a = try file.floats(downA)
        #expect(a[0] == 0.021450192 && a[3 * 1536 + 700] == 0.011065888 && a.last == 0.013979885)
        #expect(abs(a.reduce(0.0) { $0 + Double($1) } - -0.08205143743361987) < 1e-9)

        let qB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
        #expect(file.tensorInfo(qB)?.shape == [576, 8])
        #expect(file.tensorInfo(qB)?.dataOffsets == 282624..<301056)
        let b = try file.floats(qB)
        #expect(b[0] == 0.31670642 && b[100 * 8 + 5] == 0.013307825 && b.last == -0.03234328)
        #expect(abs(b.reduce(0.0) { $0 + Double($1) } - 20.961129558010725) < 1e-9)

        let kB = "base_model.model.model.layers.29.self_attn.k_proj.lora_B.weight"
        #expect(file.tensorInfo(kB)?.shape == [192, 8])
        #expect(try file.floats(kB).first == -0.20331256)
    }

    @Test func writerReproducesTheReferenceFile() throws {
        // Given every tensor of the reference file
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixturePath)))
        let file = try SafetensorsFile(bytes: original)
        var writer = SafetensorsWriter()
        writer.metadata = file.metadata
        for name in file.tensorNames.reversed() {
            writer.add(name: name, shape: file.tensorInfo(name)!.shape, floats: try file.floats(name))
        }

        // Then rewriting them gives the file the Python library wrote
        #expect(writer.serialize() == original)
    }

    @Test func everyTruncationIsAnError() throws {
        // Given a valid file whose last tensor ends at the end of the file
        var writer = SafetensorsWriter()
        writer.metadata = ["format": "pt"]
        writer.add(name: "a", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        writer.add(name: "b", shape: [4], bf16: [1, 2, 3, 4])
        let bytes = writer.serialize()
        #expect(parseError(bytes) == nil)

        // Then every strict prefix is refused
        for cut in 0..<bytes.count {
            #expect(parseError(Array(bytes[0..<cut])) != nil, "prefix of \(cut) bytes was accepted")
        }
    }

    @Test func corruptHeadersAreRefusedWithSpecificErrors() throws {
        let eight = [UInt8](repeating: 0, count: 8)
        let entry = { (dtype: String, shape: String, offsets: String) in
            #"{"t":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}}"#
        }
        let cases: [(String, [UInt8], (SafetensorsError) -> Bool)] = [
            ("header length past the end", withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init) + Array("{}".utf8),
             { if case .headerTooLong = $0 { true } else { false } }),
            ("header length of 2^64-1", [UInt8](repeating: 0xFF, count: 8) + Array("{}".utf8),
             { if case .headerTooLong = $0 { true } else { false } }),
            ("bad JSON", rawFile(header: #"{"t":{"dtype":"F32","#, data: eight),
             { if case .invalidHeaderJSON = $0 { true } else { false } }),
            ("not an object", rawFile(header: "[1, 2]", data: []),
             { if case .invalidHeaderJSON = $0 { true } else { false } }),
            ("non-string metadata", rawFile(header: #"{"__metadata__":{"n":1}}"#, data: []),
             { if case .invalidHeaderJSON = $0 { true } else { false } }),
            ("missing dtype", rawFile(header: #"{"t":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight),
             { if case .invalidTensorEntry(let n, _) = $0 { n == "t" } else { false } }),
            ("unknown dtype", rawFile(header: entry("Q4_1", "[2]", "[0,8]"), data: eight),
             { if case .unknownDType(let n, let d) = $0 { n == "t" && d == "Q4_1" } else { false } }),
            ("negative dimension", rawFile(header: entry("F32", "[-2]", "[0,8]"), data: eight),
             { if case .invalidShape = $0 { true } else { false } }),
            ("element count overflow", rawFile(header: entry("F32", "[4294967296,4294967296]", "[0,8]"), data: eight),
             { if case .invalidShape = $0 { true } else { false } }),
            ("offsets past the end", rawFile(header: entry("F32", "[2]", "[8,16]"), data: eight),
             { if case .invalidOffsets = $0 { true } else { false } }),
            ("begin after end", rawFile(header: entry("F32", "[0]", "[8,0]"), data: eight),
             { if case .invalidOffsets = $0 { true } else { false } }),
            ("three offsets", rawFile(header: entry("F32", "[2]", "[0,4,8]"), data: eight),
             { if case .invalidOffsets = $0 { true } else { false } }),
            ("negative offset", rawFile(header: entry("F32", "[2]", "[-8,0]"), data: eight),
             { if case .invalidOffsets = $0 { true } else { false } }),
            ("size does not match shape", rawFile(header: entry("F32", "[3]", "[0,8]"), data: eight),
             { if case .sizeMismatch(let n, _, _, let expected, let found) = $0 { n == "t" && expected == 12 && found == 8 } else { false } }),
            ("overlapping tensors", rawFile(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight),
             { if case .overlappingTensors(let a, let b) = $0 { Set([a, b]) == ["x", "y"] } else { false } }),
        ]
        for (label, bytes, matches) in cases {
            let error = parseError(bytes)
            #expect(error.map(matches) == true, "\(label): got \(String(describing: error))")
            #expect(error.map { !$0.description.isEmpty } ?? false)
        }
    }

    @Test func conversionAndLookupErrorsNameTheTensor() throws {
        // Given a valid file holding an integer tensor
        let file = try SafetensorsFile(bytes: rawFile(header: #"{"step":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
                                                      data: [UInt8](repeating: 0, count: 8)))

        // Then it opens, but cannot be read as floats, and a missing name is reported
        #expect(file.tensorInfo("step")?.dtype == .i64)
        #expect(throws: SafetensorsError.self) { try file.floats("step") }
        do {
            _ = try file.floats("step")
        } catch {
            #expect(error.description.contains("'step'") && error.description.contains("I64"))
        }
        #expect(throws: SafetensorsError.self) { try file.floats("nope") }
        let unknown = parseError(rawFile(header: #"{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#, data: [0]))
        #expect(unknown?.description.contains("'w'") == true && unknown?.description.contains("F4") == true)
    }

    @Test func unreadablePathsAreErrors() {
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: "/nonexistent/adapter_model.safetensors") }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: NSTemporaryDirectory()) }
    }
}
