/// JSON in and out of template values. Output matches Python's `json.dumps` as Hugging Face's
/// `tojson` calls it (key order kept, `", "` and `": "` separators, non-ASCII unescaped), because
/// tool schemas are pasted into prompts and the model was trained on exactly those bytes.
enum TemplateJSON {
    static func serialize(_ value: TemplateValue, indent: Int?, ensureASCII: Bool,
                          separators: (item: String, key: String)?, sortKeys: Bool) throws(TemplateEvaluationError) -> String {
        var writer = Writer(indent: indent.map { String(repeating: " ", count: max($0, 0)) }, ensureASCII: ensureASCII,
                            itemSeparator: separators?.item ?? (indent == nil ? ", " : ","),
                            keySeparator: separators?.key ?? ": ", sortKeys: sortKeys)
        try writer.write(value, level: 0)
        return writer.out
    }

    private struct Writer {
        let indent: String?
        let ensureASCII: Bool
        let itemSeparator: String
        let keySeparator: String
        let sortKeys: Bool
        var out = ""

        mutating func write(_ value: TemplateValue, level: Int) throws(TemplateEvaluationError) {
            guard level < TemplateLimits.maxNesting else { throw TemplateEvaluationError("tojson: value is too deeply nested") }
            switch value {
            case .none: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .double(let d):
                out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : d.description
            case .string(let s): writeString(s)
            case .array(let items):
                try writeContainer("[", "]", items, level: level) { (w: inout Writer, item) throws(TemplateEvaluationError) in
                    try w.write(item, level: level + 1)
                }
            case .dict(let dict):
                let entries = sortKeys ? dict.entries.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
                    : dict.entries
                try writeContainer("{", "}", entries, level: level) { (w: inout Writer, entry) throws(TemplateEvaluationError) in
                    w.writeString(entry.key)
                    w.out += w.keySeparator
                    try w.write(entry.value, level: level + 1)
                }
            case .undefined, .namespace:
                throw TemplateEvaluationError("Object of type \(value.typeName) is not JSON serializable")
            }
        }

        private mutating func writeContainer<T>(_ open: String, _ close: String, _ items: [T], level: Int,
                                                _ element: (inout Writer, T) throws(TemplateEvaluationError) -> Void) throws(TemplateEvaluationError) {
            out += open
            guard !items.isEmpty else { return out += close }
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
                try element(&self, item)
            }
            if let indent { out += "\n" + String(repeating: indent, count: level) }
            out += close
        }

        mutating func writeString(_ s: String) {
            out += "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                        for unit in String(scalar).utf16 { out += "\\u" + hex4(unit) }
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            out += "\""
        }

        private func hex4(_ unit: UInt16) -> String {
            let digits = String(unit, radix: 16)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }
    }
}

extension TemplateValue {
    /// Parses JSON, such as an OpenAI request's `tools`, keeping object key order so that `tojson`
    /// reproduces it. Integers that fit `Int` become `.int`, other numbers `.double`.
    public init(json: String) throws(ChatTemplateError) {
        var parser = JSONParser(bytes: Array(json.utf8))
        do throws(TemplateEvaluationError) {
            parser.skipWhitespace()
            self = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.index == parser.bytes.count else { throw parser.failure("unexpected trailing characters") }
        } catch {
            throw ChatTemplateError.runtime(message: "invalid JSON at byte \(parser.index): \(error.message)")
        }
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    func failure(_ message: String) -> TemplateEvaluationError {
        TemplateEvaluationError(message)
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value(depth: Int) throws(TemplateEvaluationError) -> TemplateValue {
        guard depth < TemplateLimits.maxNesting else { throw failure("nested too deeply") }
        guard index < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var dict = TemplateDict()
            try elements(until: UInt8(ascii: "}")) { (p: inout JSONParser) throws(TemplateEvaluationError) in
                guard p.index < p.bytes.count, p.bytes[p.index] == UInt8(ascii: "\"") else { throw p.failure("expected a string key") }
                let key = try p.string()
                p.skipWhitespace()
                guard p.index < p.bytes.count, p.bytes[p.index] == UInt8(ascii: ":") else { throw p.failure("expected ':'") }
                p.index += 1
                p.skipWhitespace()
                dict[key] = try p.value(depth: depth + 1)
            }
            return .dict(dict)
        case UInt8(ascii: "["):
            index += 1
            var items: [TemplateValue] = []
            try elements(until: UInt8(ascii: "]")) { (p: inout JSONParser) throws(TemplateEvaluationError) in
                items.append(try p.value(depth: depth + 1))
            }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .none)
        default: return try number()
        }
    }

    /// Comma-separated elements up to `close`; the opening bracket is already consumed.
    private mutating func elements(until close: UInt8,
                                   _ element: (inout JSONParser) throws(TemplateEvaluationError) -> Void) throws(TemplateEvaluationError) {
        skipWhitespace()
        if index < bytes.count, bytes[index] == close {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            guard index < bytes.count else { throw failure("unexpected end of input") }
            let byte = bytes[index]
            index += 1
            if byte == close { return }
            guard byte == UInt8(ascii: ",") else { throw failure("expected ',' or '\(Character(Unicode.Scalar(close)))'") }
        }
    }

    private mutating func literal(_ word: String, _ value: TemplateValue) throws(TemplateEvaluationError) -> TemplateValue {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<(index + expected.count)]) == expected else {
            throw failure("unexpected character")
        }
        index += expected.count
        return value
    }

    private mutating func number() throws(TemplateEvaluationError) -> TemplateValue {
        let start = index
        var isInteger = true
        while index < bytes.count, "0123456789+-.eE".utf8.contains(bytes[index]) {
            if ".eE".utf8.contains(bytes[index]) { isInteger = false }
            index += 1
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let i = Int(text) { return .int(i) }
        guard !text.isEmpty, let d = Double(text) else { throw failure("invalid number '\(text)'") }
        return .double(d)
    }

    private mutating func string() throws(TemplateEvaluationError) -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var run = index
        func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flush(index)
                index += 1
                return String(scalars)
            }
            guard byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            flush(index)
            guard index + 1 < bytes.count else { break }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(escape))
            case UInt8(ascii: "u"):
                var code = try hex4()
                // A UTF-16 surrogate pair spells one scalar outside the Basic Multilingual Plane.
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    index += 2
                    let low = try hex4()
                    code = (0xDC00..<0xE000).contains(low) ? 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                }
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: throw failure("invalid escape")
            }
            run = index
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws(TemplateEvaluationError) -> UInt32 {
        guard index + 4 <= bytes.count,
              let code = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16) else {
            throw failure("invalid \\u escape")
        }
        index += 4
        return code
    }
}
