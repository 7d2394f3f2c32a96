import ArgumentParser

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of TEXT as a JSON array (special tokens parsed).")

    @OptionGroup var options: ModelOptions

    @Flag(help: "Prepend the BOS token.")
    var bos = false

    @Argument(help: "The text to tokenize.")
    var text: String

    func run() throws {
        let loaded = try LoadedModel(options: options)
        let ids = loaded.tokenizer.encode(text, parseSpecialTokens: true, addBOS: bos)
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
    }
}
