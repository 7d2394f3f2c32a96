// Incremental decoding for streamed generation. A token can end in the middle of a UTF-8
// character (emoji and accented letters are often split over byte tokens), so the bytes of
// an incomplete trailing character are held back until the tokens that complete it arrive.

public struct StreamingDetokenizer: Sendable {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text completed by this token; possibly empty.
    public mutating func append(_ id: Int) -> String {
        if skipSpecialTokens && tokenizer.isSpecial(id) { return "" }
        pending += tokenizer.tokenBytes(id)
        let complete = Self.completePrefixLength(pending)
        if complete == 0 { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back, with invalid bytes as U+FFFD; resets the stream.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of `bytes` minus a trailing lead byte and the continuation bytes after it, when
    /// they are fewer than the lead byte announces.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var i = n - 1
        // Step back over at most 3 continuation bytes (10xxxxxx) to the last lead byte.
        while i >= 0 && i >= n - 4 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 && i >= n - 4 else { return n }
        let lead = bytes[i]
        let expected: Int
        switch lead {
        case 0xC2...0xDF: expected = 2
        case 0xE0...0xEF: expected = 3
        case 0xF0...0xF4: expected = 4
        default: expected = 1  // ASCII or a byte that can never start a character
        }
        return n - i < expected ? i : n
    }
}
