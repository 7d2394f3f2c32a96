import Foundation
import ModelFormats
import Testing
import Tokenization

@Suite struct TokenizerTests {
    static let roundTripTexts: [String] = [
        "Hello world",
        "",
        " ",
        "   leading and trailing   ",
        "Tabs\tand\t\ttabs\n\nand\r\nCRLF\n",
        "émojis 🤖🚀 and ünïcödé",
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich",
        "日本語のテキストと中文文本, 한국어 텍스트",
        "Здравствуй, мир! Γειά σου Κόσμε! مرحبا بالعالم",
        "family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tone: 👍🏽",
        "combining: e\u{0301} vs \u{00E9}, zero-width: a\u{200B}b",
        "func f(_ x: Int) -> Int {\n    return x * 2 // double\n}\n",
        "for (i = 0; i < n; ++i) { a[i] += b[i] << 2; }",
        "I'm sure they'll say it's fine, we've done it; THEY'LL",
        "numbers 1234567 and 3.14159, ½ and ², Ⅻ",
        "URL: https://example.com/a?b=c&d=e#f",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start without the end",
        "\u{00A0}non-breaking\u{3000}ideographic space",
        String(repeating: "a", count: 500),
        String(repeating: " ", count: 300) + "x",
        String(repeating: "!?", count: 200),
    ]

    /// GPT-2's byte-to-unicode character for one byte, written out independently of the tokenizer:
    /// printable Latin-1 bytes stand for themselves, the rest map to U+0100 onwards in byte order.
    static func byteLevel(_ byte: UInt8) -> String {
        func printable(_ b: Int) -> Bool { (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) }
        let b = Int(byte)
        let scalar = printable(b) ? b : 256 + (0..<b).filter { !printable($0) }.count
        return String(Unicode.Scalar(UInt32(scalar))!)
    }

    // MARK: Reference fixtures

    @Test func encodesReferenceFixturesExactly() throws {
        // Given the real vocabulary and the reference (text, ids) pairs from HF tokenizers
        let tokenizer = try VocabularyFixture.tokenizer()
        let cases = try VocabularyFixture.jsonLines("tokenize.jsonl")
        #expect(cases.count >= 10)
        for c in cases {
            let text = c["text"] as! String
            // When encoding with special tokens parsed and no BOS
            let ids = tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
            // Then the ids match exactly
            #expect(ids == c["ids"] as! [Int], "\(text.debugDescription)")
        }
    }

    @Test func encodesRandomTextsLikeHuggingFaceTokenizers() throws {
        // Given seeded random texts (words of many scripts, whitespace runs, digits,
        // contractions, emoji sequences, control tokens whole and cut, random scalars) and
        // the ids HF tokenizers gives them (scripts/reference/make_tokenizer_reference.py)
        let tokenizer = try VocabularyFixture.tokenizer()
        let cases = try VocabularyFixture.jsonLines("tokenize_fuzz.jsonl")
        #expect(cases.count >= 1000)
        // When each is encoded, Then the ids match exactly: every disagreement is listed
        var mismatches: [String] = []
        for c in cases {
            let text = c["text"] as! String, expected = c["ids"] as! [Int]
            let ids = tokenizer.encode(text, parseSpecialTokens: true, addBOS: false)
            if ids != expected { mismatches.append("\(text.debugDescription): \(ids) expected \(expected)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count) differ:\n\(mismatches.prefix(8).joined(separator: "\n"))")
    }

    @Test func decodesRandomIdsLikeHuggingFaceTokenizers() throws {
        // Given seeded random id sequences, mostly single-byte tokens that cut UTF-8
        // sequences apart, and the text HF tokenizers decodes them to (control tokens kept)
        let tokenizer = try VocabularyFixture.tokenizer()
        let cases = try VocabularyFixture.jsonLines("detokenize_fuzz.jsonl")
        #expect(cases.count >= 500)
        // When each is decoded, Then the text is the same, U+FFFD for U+FFFD
        var mismatches: [String] = []
        for c in cases {
            let ids = c["ids"] as! [Int], expected = c["text"] as! String
            let text = tokenizer.decode(ids)
            if Array(text.unicodeScalars) != Array(expected.unicodeScalars) {
                mismatches.append("\(ids): \(text.debugDescription) expected \(expected.debugDescription)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count) differ:\n\(mismatches.prefix(8).joined(separator: "\n"))")
    }

    @Test func greedyFixturePromptsReencodeToTheSameIds() throws {
        // Given the prompt and output ids of the greedy generation fixture
        let tokenizer = try VocabularyFixture.tokenizer()
        for c in try VocabularyFixture.jsonLines("greedy_fp32.jsonl") {
            let promptIds = c["prompt_ids"] as! [Int]
            // When decoding the prompt (special tokens kept) and encoding the text again
            let text = tokenizer.decode(promptIds)
            // Then the ids come back unchanged, and the output decodes to the reference text
            #expect(tokenizer.encode(text, parseSpecialTokens: true) == promptIds, "\(text.debugDescription)")
            #expect(text.contains(c["prompt"] as! String))
            #expect(tokenizer.decode(c["output_ids"] as! [Int], skipSpecialTokens: true) == c["output"] as! String)
        }
    }

    // MARK: Round trips

    @Test(arguments: roundTripTexts)
    func decodeInvertsEncode(_ text: String) throws {
        // Given any text
        let tokenizer = try VocabularyFixture.tokenizer()
        // When it is encoded and decoded, with and without special-token parsing
        for parse in [true, false] {
            let ids = tokenizer.encode(text, parseSpecialTokens: parse)
            // Then the decoded text has exactly the original scalars
            #expect(Array(tokenizer.decode(ids).unicodeScalars) == Array(text.unicodeScalars))
            #expect(ids.allSatisfy { (0..<tokenizer.vocabularySize).contains($0) })
        }
    }

    @Test(arguments: [
        "émojis 🤖🚀 and ünïcödé",
        "family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tone: 👍🏽",
        "日本語のテキストと中文文本",
        "Ça va? Très bien. Ğ ğ Ş ş İ ı — “quotes” … €100",
        "<|im_start|>assistant\n🙂 done<|im_end|>",
    ])
    func streamingDetokenizerMatchesWholeDecode(_ text: String) throws {
        // Given the tokens of text whose characters span several byte tokens
        let tokenizer = try VocabularyFixture.tokenizer()
        let ids = tokenizer.encode(text)
        let whole = tokenizer.decode(ids)
        // When they are detokenized one at a time
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var streamed = ""
        for id in ids {
            let chunk = detokenizer.append(id)
            // Then no chunk carries a broken character, and the stream so far is a prefix of the whole
            #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "chunk \(chunk.debugDescription) after token \(id)")
            streamed += chunk
            #expect(whole.unicodeScalars.starts(with: streamed.unicodeScalars))
        }
        streamed += detokenizer.flush()
        #expect(Array(streamed.unicodeScalars) == Array(whole.unicodeScalars))
        #expect(Array(whole.unicodeScalars) == Array(text.unicodeScalars))
    }

    @Test func streamingHoldsBackAnIncompleteCharacterAndFlushesInvalidBytes() throws {
        // Given "🤖", whose four UTF-8 bytes are spread over several tokens
        let tokenizer = try VocabularyFixture.tokenizer()
        let ids = tokenizer.encode("🤖")
        #expect(ids.count > 1)
        // When all but the last token are appended
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var early = ""
        for id in ids.dropLast() { early += detokenizer.append(id) }
        // Then nothing is emitted until the last token completes the character
        #expect(early == "")
        #expect(detokenizer.append(ids.last!) == "🤖")
        #expect(detokenizer.flush() == "")

        // Given a stream that ends inside a character
        let leadByte = try #require(tokenizer.tokenId(for: Self.byteLevel(0xF0)))
        #expect(tokenizer.tokenBytes(leadByte) == [0xF0])
        #expect(detokenizer.append(leadByte) == "")
        // When it is flushed, then the dangling byte comes out as U+FFFD
        #expect(detokenizer.flush() == "\u{FFFD}")
    }

    // MARK: Special tokens

    @Test func specialTokensAreParsedOnlyWhenAsked() throws {
        // Given text with ChatML control tokens
        let tokenizer = try VocabularyFixture.tokenizer()
        let text = "<|im_start|>user\nHi<|im_end|>"
        // When parsing is on, then they become single tokens
        let parsed = tokenizer.encode(text, parseSpecialTokens: true)
        #expect(parsed == [1, 4093, 198, 26843, 2])
        // When parsing is off, then they are plain text that decodes back to itself
        let plain = tokenizer.encode(text, parseSpecialTokens: false)
        #expect(!plain.contains(1) && !plain.contains(2))
        #expect(plain.count > parsed.count)
        #expect(tokenizer.decode(plain) == text)
        #expect(tokenizer.encode("<|im_end|><|im_end|>x<|endoftext|>") == [2, 2, tokenizer.tokenId(for: "x")!, 0])
    }

    @Test func decodeSkipsSpecialTokensWhenAsked() throws {
        // Given ids with control tokens around text
        let tokenizer = try VocabularyFixture.tokenizer()
        let ids = tokenizer.encode("<|im_start|>assistant\nHello!<|im_end|>")
        // When decoding, then control tokens appear as their text unless skipped
        #expect(tokenizer.decode(ids) == "<|im_start|>assistant\nHello!<|im_end|>")
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "assistant\nHello!")
        #expect(tokenizer.isSpecial(2) && tokenizer.isSpecial(0) && !tokenizer.isSpecial(ids[1]))
        #expect(tokenizer.tokenBytes(2) == Array("<|im_end|>".utf8))
    }

    @Test func vocabularyLookupsAndEndOfGeneration() throws {
        // Given the SmolLM2 vocabulary
        let tokenizer = try VocabularyFixture.tokenizer()
        // Then the ids from the GGUF metadata and the vocabulary lookups agree
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.bosTokenId == 1)
        #expect(tokenizer.eosTokenId == 2)
        #expect(tokenizer.tokenId(for: "<|im_end|>") == 2)
        #expect(tokenizer.tokenId(for: "<|im_start|>") == 1)
        #expect(tokenizer.tokenId(for: "Ġ") == 216)
        #expect(Self.byteLevel(0x20) == "Ġ" && Self.byteLevel(0x0A) == "Ċ" && tokenizer.tokenId(for: "Ċ") == 198)
        #expect(tokenizer.tokenId(for: " ") == 216)
        #expect(tokenizer.tokenId(for: "<|no_such_token|>") == nil)
        #expect(tokenizer.tokenBytes(216) == [0x20])
        #expect(tokenizer.tokenBytes(-1) == [] && tokenizer.tokenBytes(49152) == [])
        // And turns end at <|im_end|> (eos) and <|endoftext|>
        #expect(tokenizer.endOfGenerationTokenIds == [0, 2])
    }

    @Test func vocabularyIsReadFromGGUFMetadata() throws {
        // Given the model file, when its tokenizer metadata is read
        let vocabulary = try TokenizerVocabulary(gguf: GGUFFile(path: VocabularyFixture.modelPath()))
        // Then every tokenizer.ggml.* key arrives
        #expect(vocabulary.tokens.count == 49152 && vocabulary.tokenTypes.count == 49152)
        #expect(vocabulary.merges.count == 48900 && vocabulary.merges.first == "Ġ t")
        #expect(vocabulary.model == "gpt2" && vocabulary.preTokenizer == "smollm")
        #expect(vocabulary.bosTokenId == 1 && vocabulary.eosTokenId == 2)
        #expect(vocabulary.unknownTokenId == 0 && vocabulary.paddingTokenId == 2)
        #expect(vocabulary.addBOS == false)
    }

    @Test func addBOSPrependsTheBOSToken() throws {
        // Given the tokenizer, when encoding with and without BOS
        let tokenizer = try VocabularyFixture.tokenizer()
        let without = tokenizer.encode("Hello world")
        let with = tokenizer.encode("Hello world", addBOS: true)
        // Then BOS is the only difference
        #expect(with == [1] + without)
        #expect(tokenizer.addBOSToken == false)
    }

    // MARK: Errors and BPE on a small vocabulary

    /// Byte tokens for all 256 bytes, then `extra` tokens, then merges of them.
    static func smallVocabulary(extra: [String], merges: [String], types: [Int]? = nil,
                                preTokenizer: String = "gpt2", model: String = "gpt2") -> TokenizerVocabulary {
        let bytes = (0..<256).map { Self.byteLevel(UInt8($0)) }
        let tokens = bytes + extra
        return TokenizerVocabulary(tokens: tokens, tokenTypes: types ?? [Int](repeating: 1, count: tokens.count),
                                   merges: merges, bosTokenId: nil, eosTokenId: nil, unknownTokenId: nil,
                                   paddingTokenId: nil, addBOS: false, preTokenizer: preTokenizer, model: model)
    }

    @Test func unsupportedPreTokenizerOrModelOrMalformedMergesThrow() throws {
        // Given vocabularies with an unknown pre-tokenizer, a non-BPE model, and bad merges
        // When building tokenizers, then each fails with an error that names the problem
        #expect(throws: TokenizerError.unsupportedPreTokenizer("qwen2")) {
            try Tokenizer(vocabulary: Self.smallVocabulary(extra: [], merges: [], preTokenizer: "qwen2"))
        }
        #expect(throws: TokenizerError.unsupportedModel("llama")) {
            try Tokenizer(vocabulary: Self.smallVocabulary(extra: [], merges: [], model: "llama"))
        }
        #expect(throws: TokenizerError.malformedMerge(index: 0, merge: "ab")) {
            try Tokenizer(vocabulary: Self.smallVocabulary(extra: ["ab"], merges: ["ab"]))
        }
        #expect(throws: TokenizerError.mergeTokenNotInVocabulary(index: 0, merge: "a b", token: "ab")) {
            try Tokenizer(vocabulary: Self.smallVocabulary(extra: [], merges: ["a b"]))
        }
        let message = "\(TokenizerError.unsupportedPreTokenizer("qwen2"))"
        #expect(message.contains("qwen2") && message.contains("smollm"))
    }

    @Test func equalRanksMergeLeftmostFirstAndLowerRanksWin() throws {
        // Given merges "a a" (rank 0) and "b c" (rank 1)
        let pairs = try Tokenizer(vocabulary: Self.smallVocabulary(extra: ["aa", "bc"], merges: ["a a", "b c"]))
        let id = { pairs.tokenId(for: $0)! }
        // When encoding odd runs of "a", then pairs form from the left
        #expect(pairs.encode("aaa") == [id("aa"), id("a")])
        #expect(pairs.encode("aaaaa") == [id("aa"), id("aa"), id("a")])
        #expect(pairs.encode("abca") == [id("a"), id("bc"), id("a")])
        // And bytes with no merges stay byte tokens
        #expect(pairs.encode("é") == Array("é".utf8).map { id(Self.byteLevel($0)) })

        // Given also "aa a" (rank 2), ranked below "a a"
        let triples = try Tokenizer(vocabulary: Self.smallVocabulary(
            extra: ["aa", "bc", "aaa"], merges: ["a a", "b c", "aa a"]))
        let id3 = { triples.tokenId(for: $0)! }
        // When encoding, then every "a a" merges before any "aa a"
        #expect(triples.encode("aaa") == [id3("aaa")])
        #expect(triples.encode("aaaa") == [id3("aa"), id3("aa")])
        #expect(triples.encode("aaaaa") == [id3("aa"), id3("aaa")])
    }

    @Test func userDefinedTokensMatchEvenWithoutSpecialParsing() throws {
        // Given a control token and a user-defined token
        let vocabulary = Self.smallVocabulary(extra: ["<ctl>", "<usr>"], merges: [],
                                              types: [Int](repeating: 1, count: 256) + [3, 4])
        let tokenizer = try Tokenizer(vocabulary: vocabulary)
        // When special parsing is off, then only the user-defined token is still matched
        #expect(tokenizer.encode("<usr><ctl>", parseSpecialTokens: true) == [257, 256])
        let plain = tokenizer.encode("<usr><ctl>", parseSpecialTokens: false)
        #expect(plain.first == 257 && !plain.contains(256) && plain.count == 6)
        #expect(!tokenizer.isSpecial(257) && tokenizer.isSpecial(256))
    }
}
