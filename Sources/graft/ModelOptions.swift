import ArgumentParser
import Foundation
import Kernels
import COpenBLAS

/// Options every model-loading command shares.
struct ModelOptions: ParsableArguments {
    static let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(help: "Path to a GGUF model (default: $GRAFT_MODEL or \(defaultModelPath)).")
    var model: String?

    @Option(help: "Worker threads for the kernels (default: all cores).")
    var threads: Int?

    var modelPath: String {
        model ?? ProcessInfo.processInfo.environment["GRAFT_MODEL"] ?? Self.defaultModelPath
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the kernel and OpenBLAS thread counts once, before any kernel runs, so the
    /// two pools never oversubscribe the cores.
    func configureThreads() {
        let count = threads ?? Parallel.defaultThreadCount()
        Parallel.threadCount = count
        openblas_set_num_threads(Int32(count))
    }
}
