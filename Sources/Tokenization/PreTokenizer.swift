// Pre-tokenization: splits text into the pieces that BPE encodes independently. Each kind
// is a hand-written matcher over Unicode scalars for the regexes llama.cpp uses
// (llama-vocab.cpp, unicode.cpp unicode_regex_split_custom_*), with true regex semantics:
//
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm: \p{N} first (every digit its own piece), then the gpt2 regex on what is left
//   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//           | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// \p{L} and \p{N} are the L* and N* general categories, \s is the White_Space property.
// A piece boundary from an earlier regex is also a boundary for lookahead: `\s+(?!\S)`
// at the end of a piece takes the whole run.

/// The character classes the regexes distinguish.
enum ScalarClass: UInt8 {
    case letter, number, whitespace, other
}

extension ScalarClass {
    private static let ascii: [ScalarClass] = (0..<128).map { classify(slow: Unicode.Scalar(UInt8($0))) }

    private static func classify(slow s: Unicode.Scalar) -> ScalarClass {
        if s.properties.isWhitespace { return .whitespace }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    @inline(__always) static func of(_ v: UInt32) -> ScalarClass {
        if v < 128 { return ascii[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return .other }
        return classify(slow: s)
    }
}

/// Text decoded to scalars, with each scalar's class and UTF-8 byte offset
/// (`byteOffsets` has one extra entry: the total byte count). Reused between calls.
struct ScalarText {
    var scalars: [UInt32] = []
    var classes: [ScalarClass] = []
    var byteOffsets: [Int] = []

    /// Decodes well-formed UTF-8 (the bytes of a Swift String, cut at scalar boundaries).
    mutating func load(_ bytes: UnsafeBufferPointer<UInt8>) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        byteOffsets.removeAll(keepingCapacity: true)
        let n = bytes.count
        var i = 0
        while i < n {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            var len: Int
            if b0 < 0x80 {
                v = b0; len = 1
            } else if b0 < 0xE0 {
                v = b0 & 0x1F; len = 2
            } else if b0 < 0xF0 {
                v = b0 & 0x0F; len = 3
            } else {
                v = b0 & 0x07; len = 4
            }
            len = min(len, n - i)
            var k = 1
            while k < len {
                v = (v << 6) | (UInt32(bytes[i + k]) & 0x3F)
                k += 1
            }
            scalars.append(v)
            classes.append(ScalarClass.of(v))
            byteOffsets.append(i)
            i += len
        }
        byteOffsets.append(n)
    }
}

public struct PreTokenizer: Sendable {
    public enum Kind: Sendable, Equatable {
        case gpt2, smollm, llama3
    }

    public let kind: Kind

    /// `tokenizer.ggml.pre` names and the matcher each uses (llama.cpp groups them the same way).
    static let kindsByName: [String: Kind] = [
        "gpt2": .gpt2, "gpt-2": .gpt2, "mpt": .gpt2, "olmo": .gpt2, "jais": .gpt2,
        "smollm": .smollm, "starcoder": .smollm, "refact": .smollm, "codeshell": .smollm,
        "llama-bpe": .llama3, "llama3": .llama3, "llama-v3": .llama3,
    ]

    public static var supportedNames: Set<String> { Set(kindsByName.keys) }

    public init(kind: Kind) {
        self.kind = kind
    }

    /// Throws `TokenizerError.unsupportedPreTokenizer` for names it has no matcher for.
    public init(name: String) throws {
        guard let kind = Self.kindsByName[name] else { throw TokenizerError.unsupportedPreTokenizer(name) }
        self.kind = kind
    }

    /// The pieces of `text`, in order; their concatenation is `text`.
    public func split(_ text: String) -> [String] {
        var utf8 = Array(text.utf8)
        var t = ScalarText()
        utf8.withUnsafeMutableBufferPointer { t.load(UnsafeBufferPointer($0)) }
        var ends: [Int] = []
        split(t, ends: &ends)
        var pieces: [String] = []
        var start = 0
        for end in ends {
            pieces.append(String(decoding: utf8[t.byteOffsets[start]..<t.byteOffsets[end]], as: UTF8.self))
            start = end
        }
        return pieces
    }

    /// Appends the end scalar index of every piece of `t` to `ends`.
    func split(_ t: ScalarText, ends: inout [Int]) {
        t.scalars.withUnsafeBufferPointer { u in
            t.classes.withUnsafeBufferPointer { c in
                switch kind {
                case .gpt2:
                    Self.splitGPT2(u, c, 0, u.count, &ends)
                case .llama3:
                    Self.splitLlama3(u, c, 0, u.count, &ends)
                case .smollm:
                    var lo = 0
                    for i in 0..<u.count where c[i] == .number {
                        Self.splitGPT2(u, c, lo, i, &ends)
                        ends.append(i + 1)
                        lo = i + 1
                    }
                    Self.splitGPT2(u, c, lo, u.count, &ends)
                }
            }
        }
    }

    private static let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

    @inline(__always) private static func ascii(_ ch: Character) -> UInt32 { UInt32(ch.asciiValue!) }

    /// Length (2 or 3) of a contraction 's 't 're 've 'm 'll 'd starting at `pos`, else 0.
    @inline(__always)
    private static func contractionLength(_ u: UnsafeBufferPointer<UInt32>, _ pos: Int, _ hi: Int,
                                          caseInsensitive: Bool) -> Int {
        guard u[pos] == apostrophe, pos + 1 < hi else { return 0 }
        func fold(_ v: UInt32) -> UInt32 { caseInsensitive && v >= 0x41 && v <= 0x5A ? v + 0x20 : v }
        let n1 = fold(u[pos + 1])
        if n1 == ascii("s") || n1 == ascii("t") || n1 == ascii("m") || n1 == ascii("d") { return 2 }
        guard pos + 2 < hi else { return 0 }
        let n2 = fold(u[pos + 2])
        if (n1 == ascii("r") && n2 == ascii("e")) || (n1 == ascii("v") && n2 == ascii("e"))
            || (n1 == ascii("l") && n2 == ascii("l")) {
            return 3
        }
        return 0
    }

    /// gpt2 regex over scalars lo..<hi.
    static func splitGPT2(_ u: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<ScalarClass>,
                          _ lo: Int, _ hi: Int, _ ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            // 's|'t|'re|'ve|'m|'ll|'d
            let contraction = contractionLength(u, pos, hi, caseInsensitive: false)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+  (all three: optional space, then a run of one class)
            let isSpace = u[pos] == space
            let lead: ScalarClass = isSpace ? (pos + 1 < hi ? c[pos + 1] : .whitespace) : c[pos]
            if lead != .whitespace {
                var p = isSpace ? pos + 1 : pos
                while p < hi && c[p] == lead { p += 1 }
                pos = p
                ends.append(pos)
                continue
            }
            // \s+(?!\S) | \s+  : a run followed by non-space gives up its last scalar to the next piece.
            var p = pos
            while p < hi && c[p] == .whitespace { p += 1 }
            if p - pos > 1 && p < hi { p -= 1 }
            pos = p
            ends.append(pos)
        }
    }

    /// llama3 regex over scalars lo..<hi.
    static func splitLlama3(_ u: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<ScalarClass>,
                            _ lo: Int, _ hi: Int, _ ends: inout [Int]) {
        var pos = lo
        while pos < hi {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            let contraction = contractionLength(u, pos, hi, caseInsensitive: true)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            let cp = u[pos]
            let cls = c[pos]
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if cls == .letter || (cls != .number && cp != cr && cp != lf && pos + 1 < hi && c[pos + 1] == .letter) {
                var p = pos + 1
                while p < hi && c[p] == .letter { p += 1 }
                pos = p
                ends.append(pos)
                continue
            }
            // \p{N}{1,3}
            if cls == .number {
                var p = pos + 1
                while p < hi && p < pos + 3 && c[p] == .number { p += 1 }
                pos = p
                ends.append(pos)
                continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let isSpace = cp == space
            let lead: ScalarClass = isSpace ? (pos + 1 < hi ? c[pos + 1] : .whitespace) : cls
            if lead == .other {
                var p = isSpace ? pos + 1 : pos
                while p < hi && c[p] == .other { p += 1 }
                while p < hi && (u[p] == cr || u[p] == lf) { p += 1 }
                pos = p
                ends.append(pos)
                continue
            }
            // \s*[\r\n]+ | \s+(?!\S) | \s+   (cls is whitespace here)
            var p = pos
            var afterLastNewline = -1
            while p < hi && c[p] == .whitespace {
                if u[p] == cr || u[p] == lf { afterLastNewline = p + 1 }
                p += 1
            }
            if afterLastNewline > 0 {
                p = afterLastNewline
            } else if p - pos > 1 && p < hi {
                p -= 1
            }
            pos = p
            ends.append(pos)
        }
    }
}
