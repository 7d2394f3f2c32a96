import ArgumentParser
import Foundation
import Kernels

extension MatMul.ActivationPrecision: ExpressibleByArgument {}
extension WeightLayout: ExpressibleByArgument {}
extension KVPrecision: ExpressibleByArgument {}
extension LoRAWeightPrecision: ExpressibleByArgument {}

/// Options every model-loading command shares.
struct ModelOptions: ParsableArguments {
    static let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(help: "Path to a GGUF model (default: $GRAFT_MODEL or \(defaultModelPath)).")
    var model: String?

    @Option(help: "Worker threads for the kernels (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp(
        "Activations in decode rows' quantized products: f32 (exact), int16 (per group of 32 with an f32 scale, on row-major weights: faster than row-major f32 for a single stream, slower than the default interleaved layout) or int8 (per group of 32, for interleaved Q4_1 and Q8_0 weights, as llama.cpp's: the fastest batches, least exact).",
        valueName: "f32|int16|int8"))
    var activations: MatMul.ActivationPrecision = .f32

    @Option(help: ArgumentHelp(
        "How Q4_1 and Q8_0 weights are held for decode: interleaved (re-laid eight rows at a time at load; the faster) or row-major (as stored). Both exact. Default: interleaved, or row-major with --activations int16, whose kernels read row-major weights.",
        valueName: "interleaved|row-major"))
    var layout: WeightLayout?

    @Option(name: .customLong("kv-cache"), help: ArgumentHelp(
        "How the KV cache stores keys and values: f32 (exact) or f16 (half the memory, so twice the positions in the same blocks, and half the bytes attention reads; each key and value rounded once, as llama.cpp's default cache).",
        valueName: "f32|f16"))
    var kvCache: KVPrecision = .f32

    @Option(name: .customLong("adapter-weights"), help: ArgumentHelp(
        "How loaded LoRA adapters hold their weights: f16 (halves, within the reference tolerance) or int8 (one scale per rank of A and of B: half the memory, and half the bytes the side path of many distinct adapters streams each step).",
        valueName: "f16|int8"))
    var adapterWeights: LoRAWeightPrecision = .f16

    @Flag(name: .customLong("no-vnni"), help: "With --activations int8, keep to the AVX2 kernels on a CPU that has VNNI (AVX-VNNI or AVX512-VNNI; by default used there: the same results, faster).")
    var noVNNI = false

    /// The layout asked for, else the default for the chosen activations.
    var weightLayout: WeightLayout { layout ?? .defaultLayout(for: activations) }

    var modelPath: String {
        model ?? ProcessInfo.processInfo.environment["GRAFT_MODEL"] ?? Self.defaultModelPath
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        // Its kernels read only the interleaved layout: with row-major weights every
        // product would quietly stay f32.
        if activations == .int8, weightLayout == .rowMajor {
            throw ValidationError("--activations int8 needs --layout interleaved: its kernels read only that layout")
        }
    }

    /// Sets the kernel thread count and the int8 kernels' instructions once, before any
    /// kernel runs.
    func configureKernels() {
        Parallel.threadCount = threads ?? Parallel.defaultThreadCount()
        if noVNNI { MatMul.int8UsesVNNI = false }
    }
}
