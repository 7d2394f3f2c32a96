import ArgumentParser

@main
struct Graft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "One quantized base LLM, many LoRA adapters: inference and tools.",
        subcommands: [TokenizeCommand.self, GenerateCommand.self, BenchCommand.self, AccuracyCommand.self, ServeCommand.self])
}
