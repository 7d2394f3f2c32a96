/// One lexical token and where it starts (1-based), for error messages.
struct TemplateToken: Sendable {
    enum Kind: Equatable, Sendable {
        case text(String)
        case blockBegin, blockEnd, variableBegin, variableEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case symbol(String)
        case end
    }

    let kind: Kind
    let location: SourceLocation
}

/// Splits a template into text and tag tokens. Whitespace control is lexical in Jinja, so it is
/// resolved here: `{%-`/`-%}` strip all whitespace beside the tag, `trim_blocks` drops the first
/// newline after a block or comment tag, `lstrip_blocks` drops spaces and tabs between a line's
/// start and a block or comment tag, and `{%+`/`+%}` opt a tag out of the last two.
struct TemplateLexer {
    private let scalars: [Unicode.Scalar]
    private let lineStarts: [Int]
    private let options: ChatTemplate.Options
    private var tokens: [TemplateToken] = []

    private static let twoCharacterSymbols: Set<String> = ["//", "**", "==", "!=", "<=", ">="]
    private static let oneCharacterSymbols = Set("+-*/%~<>=.,:|()[]{}".unicodeScalars)

    init(source: String, options: ChatTemplate.Options) {
        // Jinja reads every newline as "\n" and drops one trailing newline (keep_trailing_newline=False).
        var scalars: [Unicode.Scalar] = []
        let raw = Array(source.unicodeScalars)
        for (i, scalar) in raw.enumerated() {
            if scalar == "\r" {
                if i + 1 < raw.count && raw[i + 1] == "\n" { continue }
                scalars.append("\n")
            } else {
                scalars.append(scalar)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        self.scalars = scalars
        self.options = options
        lineStarts = [0] + scalars.indices.filter { scalars[$0] == "\n" }.map { $0 + 1 }
    }

    consuming func tokenize() throws(ChatTemplateError) -> [TemplateToken] {
        var pos = 0
        // Whether the last tag ended a line; lstrip_blocks then also applies to a tag at the start
        // of the next text. True at the start of the template.
        var lineStarting = true
        while pos < scalars.count {
            guard let open = nextTagOpen(from: pos) else {
                appendText(pos..<scalars.count)
                break
            }
            let kind = scalars[open + 1]
            let marker: Unicode.Scalar? = open + 2 < scalars.count ? scalars[open + 2] : nil
            var textEnd = open
            if marker == "-" {
                while textEnd > pos && Self.isWhitespace(scalars[textEnd - 1]) { textEnd -= 1 }
            } else if kind != "{" && marker != "+" && options.lstripBlocks {
                textEnd = lstrippedEnd(textStart: pos, tagStart: open, lineStarting: lineStarting)
            }
            appendText(pos..<textEnd)

            let hasMarker = marker == "-" || (marker == "+" && kind != "{")
            var (cursor, endMarker) = kind == "#"
                ? try skipComment(open: open, from: open + 2 + (hasMarker ? 1 : 0))
                : try lexTag(open: open, isBlock: kind == "%", from: open + 2 + (hasMarker ? 1 : 0))
            if endMarker == "-" {
                while cursor < scalars.count && Self.isWhitespace(scalars[cursor]) { cursor += 1 }
            } else if endMarker == nil && kind != "{" && options.trimBlocks
                && cursor < scalars.count && scalars[cursor] == "\n" {
                cursor += 1
            }
            lineStarting = scalars[cursor - 1] == "\n"
            pos = cursor
        }
        tokens.append(TemplateToken(kind: .end, location: location(of: scalars.count)))
        return tokens
    }

    private func nextTagOpen(from pos: Int) -> Int? {
        var i = pos
        while i + 1 < scalars.count {
            if scalars[i] == "{" && (scalars[i + 1] == "{" || scalars[i + 1] == "%" || scalars[i + 1] == "#") {
                return i
            }
            i += 1
        }
        return nil
    }

    /// Where the text before a tag ends once lstrip_blocks removed the tag's indentation.
    private func lstrippedEnd(textStart: Int, tagStart: Int, lineStarting: Bool) -> Int {
        var lineStart = tagStart
        while lineStart > textStart && scalars[lineStart - 1] != "\n" { lineStart -= 1 }
        guard lineStart > textStart || lineStarting else { return tagStart }
        let indentation = scalars[lineStart..<tagStart]
        return !indentation.isEmpty && indentation.allSatisfy(Self.isWhitespace) ? lineStart : tagStart
    }

    private mutating func appendText(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars[range])
        tokens.append(TemplateToken(kind: .text(String(text)), location: location(of: range.lowerBound)))
    }

    /// Returns the position after `#}` and the marker before it (`-`, `+` or none).
    private func skipComment(open: Int, from start: Int) throws(ChatTemplateError) -> (Int, Unicode.Scalar?) {
        var i = start
        while i + 1 < scalars.count {
            if scalars[i] == "#" && scalars[i + 1] == "}" {
                let marker = i > start && (scalars[i - 1] == "-" || scalars[i - 1] == "+") ? scalars[i - 1] : nil
                return (i + 2, marker)
            }
            i += 1
        }
        throw syntaxError("unclosed comment", at: open)
    }

    /// Emits the tokens of a `{% … %}` or `{{ … }}` tag; returns the position after it and its end marker.
    private mutating func lexTag(open: Int, isBlock: Bool, from start: Int) throws(ChatTemplateError) -> (Int, Unicode.Scalar?) {
        tokens.append(TemplateToken(kind: isBlock ? .blockBegin : .variableBegin, location: location(of: open)))
        // Inside brackets `}}` closes a dict, not the tag: `{{ {'a': {'b': 1}} }}`.
        var bracketDepth = 0
        var i = start
        while true {
            while i < scalars.count && Self.isWhitespace(scalars[i]) { i += 1 }
            guard i < scalars.count else {
                throw syntaxError("unexpected end of template: '\(isBlock ? "{%" : "{{")' is never closed", at: open)
            }
            if bracketDepth == 0 {
                let marker: Unicode.Scalar? = scalars[i] == "-" || (isBlock && scalars[i] == "+") ? scalars[i] : nil
                let j = marker == nil ? i : i + 1
                if j + 1 < scalars.count && scalars[j] == (isBlock ? "%" : "}") && scalars[j + 1] == "}" {
                    append(isBlock ? .blockEnd : .variableEnd, at: i)
                    return (j + 2, marker)
                }
            }
            let scalar = scalars[i]
            if scalar == "_" || scalar.properties.isAlphabetic {
                var end = i
                while end < scalars.count
                    && (scalars[end] == "_" || scalars[end].properties.isAlphabetic || Self.isDigit(scalars[end])) { end += 1 }
                append(.name(string(i..<end)), at: i)
                i = end
            } else if Self.isDigit(scalar) {
                i = try lexNumber(at: i)
            } else if scalar == "'" || scalar == "\"" {
                i = try lexString(at: i)
            } else if i + 1 < scalars.count, Self.twoCharacterSymbols.contains(string(i..<(i + 2))) {
                append(.symbol(string(i..<(i + 2))), at: i)
                i += 2
            } else if Self.oneCharacterSymbols.contains(scalar) {
                switch scalar {
                case "(", "[", "{": bracketDepth += 1
                case ")", "]", "}": bracketDepth = max(0, bracketDepth - 1)
                default: break
                }
                append(.symbol(String(scalar)), at: i)
                i += 1
            } else {
                throw syntaxError("unexpected character '\(String(scalar))'", at: i)
            }
        }
    }

    private mutating func lexNumber(at start: Int) throws(ChatTemplateError) -> Int {
        var i = start
        func digits() { while i < scalars.count && (Self.isDigit(scalars[i]) || scalars[i] == "_") { i += 1 } }
        digits()
        var isFloat = false
        // `a.0.1` is two subscripts, not a float, as in Jinja's lexer.
        let afterDot = start > 0 && scalars[start - 1] == "."
        if !afterDot && i + 1 < scalars.count && scalars[i] == "." && Self.isDigit(scalars[i + 1]) {
            i += 1
            digits()
            isFloat = true
        }
        if !afterDot && i < scalars.count && (scalars[i] == "e" || scalars[i] == "E") {
            var j = i + 1
            if j < scalars.count && (scalars[j] == "+" || scalars[j] == "-") { j += 1 }
            if j < scalars.count && Self.isDigit(scalars[j]) {
                i = j
                digits()
                isFloat = true
            }
        }
        let text = string(start..<i).filter { $0 != "_" }
        if isFloat, let value = Double(text) {
            append(.float(value), at: start)
        } else if let value = Int(text) {
            append(.integer(value), at: start)
        } else {
            throw syntaxError("invalid number '\(text)'", at: start)
        }
        return i
    }

    /// Decodes a quoted string with Python's escapes, which is what Jinja applies.
    private mutating func lexString(at start: Int) throws(ChatTemplateError) -> Int {
        let quote = scalars[start]
        var value = String.UnicodeScalarView()
        var i = start + 1
        while i < scalars.count && scalars[i] != quote {
            guard scalars[i] == "\\", i + 1 < scalars.count else {
                value.append(scalars[i])
                i += 1
                continue
            }
            let escape = scalars[i + 1]
            i += 2
            switch escape {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\", "'", "\"": value.append(escape)
            case "a": value.append("\u{07}")
            case "b": value.append("\u{08}")
            case "f": value.append("\u{0C}")
            case "v": value.append("\u{0B}")
            case "\n": break
            case "0"..."7":
                var code = escape.value - 48
                var taken = 1
                while taken < 3, i < scalars.count, ("0"..."7").contains(scalars[i]) {
                    code = code * 8 + scalars[i].value - 48
                    i += 1
                    taken += 1
                }
                value.append(Unicode.Scalar(code)!)
            case "x", "u", "U":
                let width = escape == "x" ? 2 : escape == "u" ? 4 : 8
                let hex = i + width <= scalars.count ? string(i..<(i + width)) : ""
                guard hex.count == width, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else {
                    throw syntaxError("invalid \\\(String(escape)) escape in string", at: i - 2)
                }
                value.append(decoded)
                i += width
            default:
                // Python keeps unknown escapes verbatim.
                value.append("\\")
                value.append(escape)
            }
        }
        guard i < scalars.count else { throw syntaxError("unterminated string", at: start) }
        append(.string(String(value)), at: start)
        return i + 1
    }

    private func string(_ range: Range<Int>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[range])
        return String(view)
    }

    private mutating func append(_ kind: TemplateToken.Kind, at offset: Int) {
        tokens.append(TemplateToken(kind: kind, location: location(of: offset)))
    }

    private func location(of offset: Int) -> SourceLocation {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return SourceLocation(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    private func syntaxError(_ message: String, at offset: Int) -> ChatTemplateError {
        let at = location(of: offset)
        return .syntax(message: message, line: at.line, column: at.column)
    }

    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar)
    }
}
