// GPT-2's reversible byte-to-unicode mapping: printable Latin-1 bytes map to themselves,
// the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) map to U+0100... in byte order,
// so every byte string becomes a string of visible characters ("Ġ" is the space).
enum ByteLevel {
    /// byte -> unicode scalar value.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// unicode scalar value -> byte, for values below `scalarToByte.count`; -1 if unmapped.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 256 + 68)
        for (b, s) in byteToScalar.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    /// The bytes a byte-level token text stands for; nil if some character is not in the mapping.
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            let v = Int(s.value)
            guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return nil }
            out.append(UInt8(scalarToByte[v]))
        }
        return out
    }
}
