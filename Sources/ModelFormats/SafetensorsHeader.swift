#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// Parses and checks the header of a safetensors file held in memory:
//   8 bytes little-endian N | N bytes of JSON | data buffer (offsets relative to its start).
// Nothing is trusted: every offset is checked against the buffer, every size against its
// shape and dtype, and no two tensors may share bytes, so readers can index without checks.
struct SafetensorsLayout {
    var metadata: [String: String]
    var tensors: [String: SafetensorsTensorInfo]
    /// Absolute offset of the data buffer in the file.
    var dataStart: Int
}

func parseSafetensors(_ bytes: [UInt8]) throws(SafetensorsError) -> SafetensorsLayout {
    guard bytes.count >= 8 else { throw .truncatedHeaderLength(fileSize: bytes.count) }
    var headerLength: UInt64 = 0
    for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * i) }
    guard headerLength <= UInt64(bytes.count - 8) else {
        throw .headerTooLong(headerLength: headerLength, fileSize: bytes.count)
    }
    let dataStart = 8 + Int(headerLength)
    let header: RawHeader
    do {
        header = try JSONDecoder().decode(RawHeader.self, from: Data(bytes[8..<dataStart]))
    } catch let error as SafetensorsError {
        throw error
    } catch {
        throw .invalidHeaderJSON(reason: describeDecodingError(error))
    }

    let bufferSize = bytes.count - dataStart
    var tensors: [String: SafetensorsTensorInfo] = [:]
    for (name, entry) in header.entries {
        tensors[name] = try checkedInfo(name: name, entry: entry, bufferSize: bufferSize)
    }
    try checkNoOverlap(tensors.values)
    return SafetensorsLayout(metadata: header.metadata, tensors: tensors, dataStart: dataStart)
}

private func checkedInfo(name: String, entry: RawEntry, bufferSize: Int) throws(SafetensorsError) -> SafetensorsTensorInfo {
    guard let dtype = SafetensorsDType(rawValue: entry.dtype) else {
        throw .unknownDType(name: name, dtype: entry.dtype)
    }
    var byteCount = dtype.byteSize
    for d in entry.shape {
        let (product, overflow) = byteCount.multipliedReportingOverflow(by: d)
        guard d >= 0, !overflow else { throw .invalidShape(name: name, shape: entry.shape) }
        byteCount = product
    }
    let offsets = entry.dataOffsets
    guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bufferSize else {
        throw .invalidOffsets(name: name, offsets: offsets, bufferSize: bufferSize)
    }
    guard offsets[1] - offsets[0] == byteCount else {
        throw .sizeMismatch(name: name, dtype: entry.dtype, shape: entry.shape,
                            expectedBytes: byteCount, foundBytes: offsets[1] - offsets[0])
    }
    return SafetensorsTensorInfo(name: name, dtype: dtype, shape: entry.shape, dataOffsets: offsets[0]..<offsets[1])
}

// After sorting by start, any overlap shows up between neighbours. Empty tensors own no bytes.
private func checkNoOverlap(_ infos: some Sequence<SafetensorsTensorInfo>) throws(SafetensorsError) {
    let sorted = infos.filter { !$0.dataOffsets.isEmpty }
        .sorted { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
    for (previous, next) in zip(sorted, sorted.dropFirst())
    where next.dataOffsets.lowerBound < previous.dataOffsets.upperBound {
        throw .overlappingTensors(previous.name, next.name)
    }
}

// The header as JSON gives it: "__metadata__" holds strings, every other key a tensor entry.
private struct RawHeader: Decodable {
    var metadata: [String: String] = [:]
    var entries: [(String, RawEntry)] = []

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: NameKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
                continue
            }
            do {
                entries.append((key.stringValue, try container.decode(RawEntry.self, forKey: key)))
            } catch {
                throw SafetensorsError.invalidTensorEntry(name: key.stringValue, reason: describeDecodingError(error))
            }
        }
    }
}

private struct RawEntry: Decodable {
    let dtype: String
    let shape: [Int]
    let dataOffsets: [Int]

    enum CodingKeys: String, CodingKey {
        case dtype, shape
        case dataOffsets = "data_offsets"
    }
}

private struct NameKey: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

// DecodingError's default description is a dump of its context; keep the path and the reason.
private func describeDecodingError(_ error: any Error) -> String {
    let context: DecodingError.Context
    switch error as? DecodingError {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
    default: return "\(error)"
    }
    let path = context.codingPath.map(\.stringValue).joined(separator: ".")
    return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
}
