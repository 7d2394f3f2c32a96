// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model = "gpt2").
//
// encode: special tokens are cut out of the text first (leftmost, longest match), every
// stretch between them is pre-tokenized (PreTokenizer), and every piece is merged by BPE
// starting from its bytes' tokens. decode: token texts map back to bytes through the
// inverse byte-to-unicode table; control tokens decode to their own text unless skipped.

public final class Tokenizer: Sendable {
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    public let unknownTokenId: Int?
    public let paddingTokenId: Int?
    /// The model's `add_bos_token` flag: whether its prompts are meant to start with BOS.
    public let addBOSToken: Bool
    /// eos plus the control tokens that end a turn (<|im_end|>, <|eot_id|>, …) present in the vocabulary.
    public let endOfGenerationTokenIds: Set<Int>
    public let preTokenizer: PreTokenizer

    private let texts: [String]
    private let types: [TokenType]
    private let bytesById: [[UInt8]]
    private let idByText: [String: Int]
    private let merges: MergeTable
    /// Token id of each single byte, -1 if the vocabulary has none.
    private let byteTokenIds: [Int32]
    /// Whole pieces found in the vocabulary skip merging (HF `ignore_merges`, llama3 only).
    private let ignoreMerges: Bool
    /// Tokens matched in raw text, longest first; indices of them grouped by first byte.
    private let specials: [SpecialToken]
    private let specialsByFirstByte: [[Int]]

    private struct SpecialToken: Sendable {
        var bytes: [UInt8]
        var id: Int
        /// Control and unknown tokens only match when special-token parsing is on;
        /// user-defined tokens always match (as in llama.cpp and HF added tokens).
        var needsParsing: Bool
    }

    /// Texts of the tokens that end a turn, in the chat formats we know of.
    static let endOfTurnTexts: Set<String> = [
        "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
        "</s>", "<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>",
    ]

    public init(vocabulary v: TokenizerVocabulary) throws {
        guard v.model == "gpt2" else { throw TokenizerError.unsupportedModel(v.model) }
        preTokenizer = try PreTokenizer(name: v.preTokenizer)
        ignoreMerges = preTokenizer.kind == .llama3
        let n = v.tokens.count
        guard n > 0 else { throw TokenizerError.emptyVocabulary }
        guard v.tokenTypes.isEmpty || v.tokenTypes.count == n else {
            throw TokenizerError.tokenTypeCountMismatch(tokens: n, tokenTypes: v.tokenTypes.count)
        }
        for (name, id) in [("bos", v.bosTokenId), ("eos", v.eosTokenId), ("unknown", v.unknownTokenId),
                           ("padding", v.paddingTokenId)] {
            if let id, !(0..<n).contains(id) {
                throw TokenizerError.specialTokenIdOutOfRange(name: name, id: id, vocabularySize: n)
            }
        }
        bosTokenId = v.bosTokenId
        eosTokenId = v.eosTokenId
        unknownTokenId = v.unknownTokenId
        paddingTokenId = v.paddingTokenId
        addBOSToken = v.addBOS
        texts = v.tokens

        let types = v.tokenTypes.isEmpty
            ? [TokenType](repeating: .normal, count: n)
            : v.tokenTypes.map { TokenType(rawValue: $0) ?? .undefined }
        self.types = types

        var idByText: [String: Int] = [:]
        idByText.reserveCapacity(n)
        for (id, text) in v.tokens.enumerated() where idByText[text] == nil { idByText[text] = id }
        self.idByText = idByText

        bytesById = (0..<n).map { Self.bytes(ofText: v.tokens[$0], type: types[$0]) }

        var byteTokenIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let text = String(Unicode.Scalar(ByteLevel.byteToScalar[b])!)
            if let id = idByText[text] { byteTokenIds[b] = Int32(id) }
        }
        self.byteTokenIds = byteTokenIds

        var merges = MergeTable(capacity: v.merges.count)
        for (rank, rule) in v.merges.enumerated() {
            // Split at the first space after the first character (as llama.cpp does).
            let scalars = rule.unicodeScalars
            guard let space = scalars.dropFirst().firstIndex(of: " ") else {
                throw TokenizerError.malformedMerge(index: rank, merge: rule)
            }
            let left = String(scalars[..<space])
            let right = String(scalars[scalars.index(after: space)...])
            guard !right.isEmpty else { throw TokenizerError.malformedMerge(index: rank, merge: rule) }
            var ids: [Int32] = []
            for part in [left, right, left + right] {
                guard let id = idByText[part] else {
                    throw TokenizerError.mergeTokenNotInVocabulary(index: rank, merge: rule, token: part)
                }
                ids.append(Int32(id))
            }
            merges.insert(left: ids[0], right: ids[1], rank: Int32(rank), merged: ids[2])
        }
        self.merges = merges

        var specials: [SpecialToken] = []
        for (id, type) in types.enumerated() where type == .control || type == .userDefined || type == .unknown {
            let bytes = Array(v.tokens[id].utf8)
            if !bytes.isEmpty { specials.append(SpecialToken(bytes: bytes, id: id, needsParsing: type != .userDefined)) }
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        var byFirst = [[Int]](repeating: [], count: 256)
        for (i, s) in specials.enumerated() { byFirst[Int(s.bytes[0])].append(i) }
        self.specials = specials
        specialsByFirstByte = byFirst

        var endOfGeneration = Set<Int>()
        if let eos = v.eosTokenId { endOfGeneration.insert(eos) }
        for text in Self.endOfTurnTexts {
            if let id = idByText[text], types[id] == .control || types[id] == .userDefined { endOfGeneration.insert(id) }
        }
        endOfGenerationTokenIds = endOfGeneration
    }

    private static func bytes(ofText text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal, .undefined:
            return ByteLevel.decode(text) ?? Array(text.utf8)
        case .byte:
            // "<0xAB>"
            if text.utf8.count == 6, text.hasPrefix("<0x"), text.hasSuffix(">"),
               let b = UInt8(text.dropFirst(3).dropLast(), radix: 16) {
                return [b]
            }
            return Array(text.utf8)
        case .control, .userDefined, .unknown, .unused:
            return Array(text.utf8)
        }
    }

    public var vocabularySize: Int { texts.count }

    /// Control, unknown and unused tokens: the ones `skipSpecialTokens` leaves out.
    public func isSpecial(_ id: Int) -> Bool {
        guard id >= 0 && id < types.count else { return false }
        switch types[id] {
        case .control, .unknown, .unused: return true
        default: return false
        }
    }

    /// Raw bytes of one token (special tokens: their text); empty for ids outside the vocabulary.
    public func tokenBytes(_ id: Int) -> [UInt8] {
        guard id >= 0 && id < bytesById.count else { return [] }
        return bytesById[id]
    }

    /// The vocabulary text of a token, as stored (byte-level encoded: "Ġthe").
    public func tokenText(_ id: Int) -> String? {
        guard id >= 0 && id < texts.count else { return nil }
        return texts[id]
    }

    /// Exact vocabulary lookup ("<|im_end|>", "Ġthe"); failing that, the token whose bytes
    /// are exactly `text` (" the").
    public func tokenId(for text: String) -> Int? {
        idByText[text] ?? idByText[ByteLevel.encode(text.utf8)]
    }

    public func encode(_ text: String, parseSpecialTokens: Bool = true, addBOS: Bool = false) -> [Int] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS, let bos = bosTokenId { out.append(Int32(bos)) }
        var scratch = EncodeScratch()
        var utf8 = Array(text.utf8)
        utf8.withUnsafeMutableBufferPointer { mbytes in
            let bytes = UnsafeBufferPointer(mbytes)
            var textStart = 0
            var i = 0
            while i < bytes.count {
                if let s = matchSpecial(bytes, at: i, parseSpecialTokens: parseSpecialTokens) {
                    encodePlain(bytes, textStart..<i, &scratch, &out)
                    out.append(Int32(s.id))
                    i += s.bytes.count
                    textStart = i
                } else {
                    i += 1
                }
            }
            encodePlain(bytes, textStart..<bytes.count, &scratch, &out)
        }
        return out.map { Int($0) }
    }

    private struct EncodeScratch {
        var text = ScalarText()
        var ends: [Int] = []
        var byteIds: [Int32] = []
        var bpe = BPEScratch()
    }

    @inline(__always)
    private func matchSpecial(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int, parseSpecialTokens: Bool) -> SpecialToken? {
        let candidates = specialsByFirstByte[Int(bytes[i])]
        if candidates.isEmpty { return nil }
        candidateLoop: for c in candidates {
            let s = specials[c]
            if s.needsParsing && !parseSpecialTokens { continue }
            if i + s.bytes.count > bytes.count { continue }
            for k in 1..<s.bytes.count where bytes[i + k] != s.bytes[k] { continue candidateLoop }
            return s
        }
        return nil
    }

    /// Pre-tokenizes and merges text with no special tokens in it.
    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                             _ st: inout EncodeScratch, _ out: inout [Int32]) {
        if range.isEmpty { return }
        st.text.load(UnsafeBufferPointer(rebasing: bytes[range]))
        st.ends.removeAll(keepingCapacity: true)
        preTokenizer.split(st.text, ends: &st.ends)
        var start = 0
        for end in st.ends {
            let lo = range.lowerBound + st.text.byteOffsets[start]
            let hi = range.lowerBound + st.text.byteOffsets[end]
            start = end
            if ignoreMerges, let id = idByText[ByteLevel.encode(bytes[lo..<hi])] {
                out.append(Int32(id))
                continue
            }
            // A byte the vocabulary has no token for is dropped before merging, so its
            // neighbours may still merge: HF tokenizers' BPE without an unk_token (SmolLM2
            // lacks 21 byte values, among them 0x04 and the lead bytes 0xF1 and 0xF2).
            // llama.cpp drops it too. Never the unknown id: in SmolLM2 that is <|endoftext|>.
            st.byteIds.removeAll(keepingCapacity: true)
            for k in lo..<hi where byteTokenIds[Int(bytes[k])] >= 0 { st.byteIds.append(byteTokenIds[Int(bytes[k])]) }
            st.byteIds.withUnsafeBufferPointer { st.bpe.merge($0, merges: merges, into: &out) }
        }
    }

    /// The UTF-8 text of `ids`; invalid byte sequences become U+FFFD, unknown ids are ignored.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where !(skipSpecialTokens && isSpecial(id)) { bytes += tokenBytes(id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
