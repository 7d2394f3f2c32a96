import Testing
import Tokenization

// Expected pieces are worked out by hand from the regexes in PreTokenizer.swift.
@Suite struct PreTokenizerTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let text: String
        let pieces: [String]
        var testDescription: String { text.debugDescription }
    }

    static let gpt2Cases: [Case] = [
        Case(text: "Hello world", pieces: ["Hello", " world"]),
        Case(text: "  leading spaces", pieces: [" ", " leading", " spaces"]),
        Case(text: "a   b", pieces: ["a", "  ", " b"]),
        Case(text: "end   ", pieces: ["end", "   "]),
        Case(text: "x\n\ny", pieces: ["x", "\n", "\n", "y"]),
        Case(text: "\t\tfoo", pieces: ["\t", "\t", "foo"]),
        Case(text: "hi!!! ok", pieces: ["hi", "!!!", " ok"]),
        Case(text: "abc 123", pieces: ["abc", " 123"]),
        Case(text: "I'm sure they'll", pieces: ["I", "'m", " sure", " they", "'ll"]),
        Case(text: "IT'S", pieces: ["IT", "'", "S"]),
        Case(text: "日本語 text", pieces: ["日本語", " text"]),
        Case(text: "x² ½", pieces: ["x", "²", " ½"]),
        Case(text: "a\u{00A0}b", pieces: ["a", "\u{00A0}", "b"]),
        Case(text: "🤖🚀 go", pieces: ["🤖🚀", " go"]),
        Case(text: "", pieces: []),
    ]

    static let smollmCases: [Case] = [
        Case(text: "numbers 1234567", pieces: ["numbers", " ", "1", "2", "3", "4", "5", "6", "7"]),
        Case(text: "3.14", pieces: ["3", ".", "1", "4"]),
        Case(text: "a  1", pieces: ["a", "  ", "1"]),
        Case(text: "x²y", pieces: ["x", "²", "y"]),
        Case(text: "I'm 2 cool", pieces: ["I", "'m", " ", "2", " cool"]),
    ]

    static let llama3Cases: [Case] = [
        Case(text: "12345", pieces: ["123", "45"]),
        Case(text: "Hello world", pieces: ["Hello", " world"]),
        Case(text: "x\n\n  y", pieces: ["x", "\n\n", " ", " y"]),
        Case(text: "foo.\n\nbar", pieces: ["foo", ".\n\n", "bar"]),
        Case(text: "(hello", pieces: ["(hello"]),
        Case(text: "I'M here", pieces: ["I", "'M", " here"]),
        Case(text: "a 12", pieces: ["a", " ", "12"]),
    ]

    @Test(arguments: gpt2Cases)
    func gpt2SplitsAsTheRegexDoes(_ c: Case) throws {
        // Given the gpt2 pre-tokenizer, when splitting, then the pieces are the regex matches
        #expect(try PreTokenizer(name: "gpt2").split(c.text) == c.pieces)
    }

    @Test(arguments: smollmCases)
    func smollmSplitsDigitsIndividually(_ c: Case) throws {
        // Given the smollm pre-tokenizer, when splitting, then every digit is its own piece
        #expect(try PreTokenizer(name: "smollm").split(c.text) == c.pieces)
    }

    @Test(arguments: llama3Cases)
    func llama3SplitsAsTheRegexDoes(_ c: Case) throws {
        // Given the llama3 pre-tokenizer, when splitting, then the pieces are the regex matches
        #expect(try PreTokenizer(name: "llama-bpe").split(c.text) == c.pieces)
    }

    @Test func piecesAlwaysConcatenateToTheInput() throws {
        // Given mixed text, when split by every pre-tokenizer, then nothing is lost or reordered
        let text = "Mixed\ttabs\n\n and  'll 12 日本 🤖!?  \r\n end  "
        for name in ["gpt2", "smollm", "llama-bpe"] {
            let pieces = try PreTokenizer(name: name).split(text)
            #expect(pieces.joined() == text)
            #expect(!pieces.contains(""))
        }
    }

    @Test func unknownNameThrows() {
        // Given a pre-tokenizer name with no matcher, when creating one, then it throws
        #expect(throws: TokenizerError.unsupportedPreTokenizer("deepseek-coder")) {
            try PreTokenizer(name: "deepseek-coder")
        }
    }
}
