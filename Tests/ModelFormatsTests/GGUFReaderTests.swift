import Foundation
import Kernels
import Testing
import ModelFormats

// Metadata covering every GGUF value type, including string arrays, nested arrays and an empty array.
private let sampleMetadata: [(String, GGUFValue)] = [
    ("general.architecture", .string("llama")),
    ("test.uint8", .uint8(200)), ("test.int8", .int8(-100)),
    ("test.uint16", .uint16(60000)), ("test.int16", .int16(-30000)),
    ("test.uint32", .uint32(4_000_000_000)), ("test.int32", .int32(-2_000_000_000)),
    ("test.uint64", .uint64(UInt64.max)), ("test.int64", .int64(Int64.min)),
    ("test.float32", .float32(1e-5)), ("test.float64", .float64(-2.5e300)),
    ("test.bool.true", .bool(true)), ("test.bool.false", .bool(false)),
    ("test.string.unicode", .string("héllo ▁wörld 🦙\n")), ("test.string.empty", .string("")),
    ("test.strings", .array([.string("<s>"), .string(""), .string("Ġthe")])),
    ("test.ints", .array([.int32(-1), .int32(0), .int32(7)])),
    ("test.floats", .array([.float32(0.5), .float32(-3)])),
    ("test.nested", .array([.array([.uint8(1), .uint8(2)]), .array([.string("x")]), .array([])])),
    ("test.empty", .array([])),
]

// Values with some structure so quantized blocks are not degenerate.
private func sampleValues(_ count: Int, seed: Int) -> [Float] {
    (0..<count).map { i in sin(Float(i * 7 + seed)) * Float(1 + (i / 32) % 3) }
}

// Raw storage of `values` in `type`, built with the Kernels reference quantizers.
private func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
    func bytes<T: FixedWidthInteger>(_ words: [T]) -> [UInt8] { words.flatMap { w in withUnsafeBytes(of: w.littleEndian, Array.init) } }
    switch type {
    case .f32: return bytes(values.map(\.bitPattern))
    case .f16: return bytes(values.map(fp32ToFp16))
    case .bf16: return bytes(values.map(fp32ToBf16))
    case .q4_0, .q4_1, .q8_0:
        var out = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
        out.withUnsafeMutableBytes { dst in
            values.withUnsafeBufferPointer { src in
                let (d, s, n) = (dst.baseAddress!, src.baseAddress!, values.count)
                switch type {
                case .q4_0: quantizeRowQ4_0(out: d, src: s, count: n)
                case .q4_1: quantizeRowQ4_1(out: d, src: s, count: n)
                default: quantizeRowQ8_0(out: d, src: s, count: n)
                }
            }
        }
        return out
    }
}

private let sampleTensors: [(name: String, dims: [Int], type: GGMLType)] = [
    ("f32.vector", [5], .f32),
    ("f16.matrix", [3, 7], .f16),
    ("bf16.cube", [4, 3, 2], .bf16),
    ("q4_0.matrix", [64, 3], .q4_0),
    ("q4_1.matrix", [96, 2, 1, 2], .q4_1),
    ("q8_0.matrix", [32, 5], .q8_0),
]

private func sampleWriter(alignment: Int = 32) -> GGUFWriter {
    var writer = GGUFWriter(alignment: alignment)
    for (key, value) in sampleMetadata { writer.add(key: key, value) }
    for (i, t) in sampleTensors.enumerated() {
        writer.addTensor(name: t.name, dims: t.dims, type: t.type, data: encode(sampleValues(t.dims.reduce(1, *), seed: i), as: t.type))
    }
    return writer
}

// A file with one tensor whose data ends exactly at end of file, so that every shorter prefix is invalid.
private func singleTensorFile(metadata: [(String, GGUFValue)] = [], type: GGMLType = .f32) -> [UInt8] {
    var writer = GGUFWriter()
    for (key, value) in metadata { writer.add(key: key, value) }
    writer.addTensor(name: "only.tensor", dims: [32, 2], type: type, data: encode(sampleValues(64, seed: 0), as: type))
    return writer.serialize()
}

private func parseError(_ bytes: [UInt8]) -> GGUFError? {
    do {
        _ = try GGUFFile(bytes: bytes)
        return nil
    } catch {
        return error
    }
}

// Offset of the first byte after the first occurrence of the length-prefixed string `s`.
private func offset(after s: String, in bytes: [UInt8]) -> Int {
    let needle = withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian, Array.init) + Array(s.utf8)
    let start = (0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }!
    return start + needle.count
}

private func patch<T: FixedWidthInteger>(_ bytes: inout [UInt8], at offset: Int, _ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<(offset + $0.count), with: $0) }
}

@Suite struct GGUFReaderTests {
    @Test func readsBackEveryMetadataValueType() throws {
        // Given a file written with every value type
        let file = try GGUFFile(bytes: sampleWriter().serialize())
        // Then version, alignment, keys (in order) and values come back unchanged
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.metadataKeys == sampleMetadata.map(\.0))
        for (key, value) in sampleMetadata { #expect(file.metadata[key] == value, "\(key)") }
    }

    @Test func valueAccessorsConvertByKind() throws {
        // Given the sample metadata
        let m = try GGUFFile(bytes: sampleWriter().serialize()).metadata
        // Then integers convert to Int when they fit, numbers to Float, and arrays element-wise
        #expect(m["test.uint32"]?.int == 4_000_000_000)
        #expect(m["test.int64"]?.int == Int(Int64.min))
        #expect(m["test.uint64"]?.int == nil)
        #expect(m["test.int8"]?.float == -100)
        #expect(m["test.float32"]?.float == 1e-5)
        #expect(m["test.bool.true"]?.bool == true && m["test.bool.true"]?.int == nil)
        #expect(m["test.string.unicode"]?.string == "héllo ▁wörld 🦙\n")
        #expect(m["test.strings"]?.stringArray == ["<s>", "", "Ġthe"])
        #expect(m["test.ints"]?.intArray == [-1, 0, 7])
        #expect(m["test.floats"]?.floatArray == [0.5, -3])
        #expect(m["test.strings"]?.intArray == nil)
        #expect(m["test.nested"]?.array?[0].intArray == [1, 2])
        #expect(m["test.empty"]?.stringArray == [])
    }

    @Test func readsBackTensorsOfEveryType() throws {
        // Given a file with one tensor of each supported type
        let file = try GGUFFile(bytes: sampleWriter().serialize())
        // Then the table, the raw bytes and the dequantized values all match what was written
        #expect(file.tensors.map(\.name) == sampleTensors.map(\.name))
        #expect(file.dataOffset % file.alignment == 0)
        for (i, t) in sampleTensors.enumerated() {
            let info = try #require(file.tensor(named: t.name))
            let count = t.dims.reduce(1, *)
            let raw = encode(sampleValues(count, seed: i), as: t.type)
            #expect(info.dims == t.dims && info.type == t.type && info.elementCount == count && info.byteCount == raw.count)
            #expect(info.offset % file.alignment == 0)
            #expect(Array(UnsafeRawBufferPointer(start: file.data(for: info), count: info.byteCount)) == raw, "\(t.name)")
            var expected = [Float](repeating: 0, count: count)
            raw.withUnsafeBytes { src in expected.withUnsafeMutableBufferPointer { dequantizeRow(type: t.type, out: $0.baseAddress!, src: src.baseAddress!, count: count) } }
            #expect(file.dequantize(info) == expected, "\(t.name)")
        }
        #expect(file.tensor(named: "absent") == nil)
    }

    @Test func customAlignmentIsRecordedAndHonoured() throws {
        // Given a writer with 64-byte alignment
        let file = try GGUFFile(bytes: sampleWriter(alignment: 64).serialize())
        // Then general.alignment is written and the data section and every tensor are 64-aligned
        #expect(file.alignment == 64)
        #expect(file.metadata["general.alignment"] == .uint32(64))
        #expect(file.dataOffset % 64 == 0)
        #expect(file.tensors.allSatisfy { $0.offset % 64 == 0 })
    }

    @Test func mapsAFileFromDisk() throws {
        // Given the sample written to a temporary file
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = sampleWriter().serialize()
        try sampleWriter().write(to: path)
        // When mapped
        let file = try GGUFFile(path: path)
        let copy = try GGUFFile(bytes: bytes)
        // Then it reads the same as the in-memory parse
        #expect(file.fileSize == bytes.count)
        #expect(file.metadataKeys == copy.metadataKeys && file.tensors == copy.tensors)
        for t in file.tensors { #expect(file.dequantize(t) == copy.dequantize(t)) }
    }

    @Test func missingAndEmptyFilesFailToOpen() throws {
        // Given a path that does not exist, Then opening reports it
        let missing = "/nonexistent/dir/model.gguf"
        guard case .cannotOpen(path: missing, _)? = openError(missing) else {
            Issue.record("expected cannotOpen, got \(String(describing: openError(missing)))")
            return
        }
        // Given an empty file, Then it is too short for the magic
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        guard case .truncated(reading: "magic", offset: 0, _, fileSize: 0)? = openError(empty) else {
            Issue.record("expected truncated magic, got \(String(describing: openError(empty)))")
            return
        }
    }

    private func openError(_ path: String) -> GGUFError? {
        do {
            _ = try GGUFFile(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test func typedAccessorsThrowMissingKeyAndWrongType() throws {
        // Given the sample metadata
        let file = try GGUFFile(bytes: sampleWriter().serialize())
        // Then present keys convert, absent keys are missingKey, and other kinds are wrongType
        #expect(try file.requireInt("test.uint16") == 60000)
        #expect(try file.requireFloat("test.float32") == 1e-5)
        #expect(try file.requireFloat("test.int16") == -30000)
        #expect(try file.requireString("general.architecture") == "llama")
        #expect {
            try file.requireInt("llama.block_count")
        } throws: { error in
            if case .missingKey("llama.block_count") = error as? GGUFError { return true }
            return false
        }
        #expect {
            try file.requireString("test.uint8")
        } throws: { error in
            if case .wrongType(key: "test.uint8", expected: "string", found: "uint8") = error as? GGUFError { return true }
            return false
        }
    }
}

@Suite struct GGUFCorruptFileTests {
    @Test func everyTruncationThrows() {
        // Given a valid file whose last tensor ends exactly at end of file
        let bytes = singleTensorFile(metadata: sampleMetadata)
        #expect(parseError(bytes) == nil)
        // When cut at every length short of the whole, Then each prefix is rejected (never a crash)
        for cut in 0..<bytes.count {
            #expect(parseError(Array(bytes[..<cut])) != nil, "cut at \(cut) of \(bytes.count)")
        }
    }

    @Test func everyHeaderByteCorruptionIsHandled() throws {
        // Given a valid file, and each byte before its data section overwritten with a few telling values
        let bytes = singleTensorFile(metadata: sampleMetadata)
        let dataOffset = try GGUFFile(bytes: bytes).dataOffset
        var rejected = 0
        for position in 0..<dataOffset {
            for value: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF] where bytes[position] != value {
                var corrupt = bytes
                corrupt[position] = value
                // When parsed, Then it either parses or throws: the test would crash otherwise
                if parseError(corrupt) != nil { rejected += 1 }
            }
        }
        // Most changes to counts, lengths, types and dims must be caught.
        #expect(rejected > dataOffset)
    }

    @Test func wrongMagicIsReported() {
        // Given a file starting with "GGML"
        var bytes = singleTensorFile()
        bytes[3] = UInt8(ascii: "L")
        bytes[2] = UInt8(ascii: "M")
        // Then the error shows the bytes found
        guard case .badMagic([0x47, 0x47, 0x4D, 0x4C])? = parseError(bytes) else {
            Issue.record("expected badMagic, got \(String(describing: parseError(bytes)))")
            return
        }
        #expect(parseError(bytes)!.description.contains("47 47 4d 4c"))
    }

    @Test(arguments: [UInt32(1), 4, 99])
    func unsupportedVersionIsReported(version: UInt32) {
        // Given a valid file with its version field changed
        var bytes = singleTensorFile()
        patch(&bytes, at: 4, version)
        // Then the version is rejected
        guard case .unsupportedVersion(version)? = parseError(bytes) else {
            Issue.record("expected unsupportedVersion(\(version)), got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func version2IsAccepted() throws {
        // Given a v3 file relabelled v2 (the layouts are identical), Then it parses
        var bytes = singleTensorFile()
        patch(&bytes, at: 4, UInt32(2))
        #expect(try GGUFFile(bytes: bytes).version == 2)
    }

    @Test func tensorOffsetPastEndOfFileIsReported() {
        // Given the tensor's offset moved to just past the data
        var bytes = singleTensorFile()
        let info = offset(after: "only.tensor", in: bytes)
        patch(&bytes, at: info + 4 + 16 + 4, UInt64(1 << 20))
        // Then the bounds check names the tensor
        guard case .tensorOutOfBounds(name: "only.tensor", _, byteCount: 256, fileSize: bytes.count)? = parseError(bytes) else {
            Issue.record("expected tensorOutOfBounds, got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func misalignedTensorOffsetIsReported() {
        // Given the tensor's offset set to 4 (inside the file but not a multiple of 32)
        var bytes = singleTensorFile()
        let info = offset(after: "only.tensor", in: bytes)
        patch(&bytes, at: info + 4 + 16 + 4, UInt64(4))
        // Then the misalignment is reported
        guard case .misalignedTensor(name: "only.tensor", offset: 4, alignment: 32)? = parseError(bytes) else {
            Issue.record("expected misalignedTensor, got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func unsupportedTensorTypeIsReported() {
        // Given the tensor type changed to 14 (Q6_K, which Graft does not read)
        var bytes = singleTensorFile()
        let info = offset(after: "only.tensor", in: bytes)
        patch(&bytes, at: info + 4 + 16, UInt32(14))
        // Then the error names the tensor and the type number
        guard case .unsupportedTensorType(name: "only.tensor", type: 14)? = parseError(bytes) else {
            Issue.record("expected unsupportedTensorType, got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func invalidDimsAreReported() {
        // Given a zero dim, five dims, and a Q8_0 row that is not whole blocks
        var zero = singleTensorFile()
        patch(&zero, at: offset(after: "only.tensor", in: zero) + 4 + 8, UInt64(0))
        var five = singleTensorFile()
        patch(&five, at: offset(after: "only.tensor", in: five), UInt32(5))
        var partial = singleTensorFile(type: .q8_0)
        patch(&partial, at: offset(after: "only.tensor", in: partial) + 4, UInt64(16))
        // Then each is invalidDims for that tensor
        for bytes in [zero, five, partial] {
            guard case .invalidDims(name: "only.tensor", _, _)? = parseError(bytes) else {
                Issue.record("expected invalidDims, got \(String(describing: parseError(bytes)))")
                continue
            }
        }
    }

    @Test func absurdArrayLengthIsReported() {
        // Given an array whose length claims far more elements than the file holds
        var bytes = singleTensorFile(metadata: [("test.array", .array([.uint32(1), .uint32(2)]))])
        let count = offset(after: "test.array", in: bytes) + 4 + 4
        patch(&bytes, at: count, UInt64(1) << 60)
        // Then it is rejected before anything is allocated for it
        guard case .arrayTooLong(key: "test.array", count: 1 << 60, offset: count, _)? = parseError(bytes) else {
            Issue.record("expected arrayTooLong, got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func absurdStringLengthAndCountsAreReported() {
        // Given a string length, a tensor count and a key/value count far beyond the file size
        var string = singleTensorFile(metadata: [("test.s", .string("abc"))])
        patch(&string, at: offset(after: "test.s", in: string) + 4, UInt64.max)
        var tensors = singleTensorFile()
        patch(&tensors, at: 8, UInt64(1) << 40)
        var kvs = singleTensorFile()
        patch(&kvs, at: 16, UInt64(1) << 40)
        // Then each is rejected by the size sanity checks
        if case .stringTooLong(length: .max, _, _)? = parseError(string) {} else {
            Issue.record("expected stringTooLong, got \(String(describing: parseError(string)))")
        }
        if case .countTooLarge(what: "tensor count", _, offset: 8, _)? = parseError(tensors) {} else {
            Issue.record("expected tensor countTooLarge, got \(String(describing: parseError(tensors)))")
        }
        if case .countTooLarge(what: "metadata key/value count", _, offset: 16, _)? = parseError(kvs) {} else {
            Issue.record("expected kv countTooLarge, got \(String(describing: parseError(kvs)))")
        }
    }

    @Test func unknownValueTypeIsReported() {
        // Given a value type number beyond float64 (12)
        var bytes = singleTensorFile(metadata: [("test.v", .uint8(1))])
        let type = offset(after: "test.v", in: bytes)
        patch(&bytes, at: type, UInt32(13))
        // Then the key and type are reported
        guard case .unknownValueType(key: "test.v", type: 13, offset: type)? = parseError(bytes) else {
            Issue.record("expected unknownValueType, got \(String(describing: parseError(bytes)))")
            return
        }
    }

    @Test func duplicatesAreReported() {
        // Given a key written twice, and a tensor written twice
        var keys = GGUFWriter()
        keys.add(key: "k", .uint8(1))
        keys.add(key: "k", .uint8(2))
        var tensors = GGUFWriter()
        tensors.addTensor(name: "t", dims: [1], type: .f32, data: [0, 0, 0, 0])
        tensors.addTensor(name: "t", dims: [1], type: .f32, data: [0, 0, 0, 0])
        // Then each duplicate is named
        if case .duplicateKey("k")? = parseError(keys.serialize()) {} else { Issue.record("expected duplicateKey") }
        if case .duplicateTensor("t")? = parseError(tensors.serialize()) {} else { Issue.record("expected duplicateTensor") }
    }

    @Test func badAlignmentIsReported() {
        // Given general.alignment that is not a power of two, or not an integer
        var three = GGUFWriter()
        three.add(key: "general.alignment", .uint32(3))
        var text = GGUFWriter()
        text.add(key: "general.alignment", .string("32"))
        // Then each is rejected
        if case .invalidAlignment(3)? = parseError(three.serialize()) {} else { Issue.record("expected invalidAlignment") }
        if case .wrongType(key: "general.alignment", _, found: "string")? = parseError(text.serialize()) {} else {
            Issue.record("expected wrongType for general.alignment")
        }
    }

    @Test func deeplyNestedArraysAreRejected() {
        // Given arrays nested 20 deep (a crafted file could nest millions deep)
        var value = GGUFValue.array([.uint8(1)])
        for _ in 0..<20 { value = .array([value]) }
        var writer = GGUFWriter()
        writer.add(key: "deep", value)
        // Then parsing stops at the depth limit instead of recursing on
        if case .arrayNestingTooDeep(key: "deep", _)? = parseError(writer.serialize()) {} else {
            Issue.record("expected arrayNestingTooDeep")
        }
    }
}
