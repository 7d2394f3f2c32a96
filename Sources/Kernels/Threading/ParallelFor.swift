import Foundation

/// Splits `0..<count` into one contiguous range per worker and runs `body` on each,
/// in parallel. Kernels parallelise over output rows this way (the OpenMP analog);
/// with `count` small the work runs inline to skip even the pool's small cost.
public enum Parallel {
    /// Worker count; set at start-up, before any kernel runs (the CLI's `--threads`).
    /// The pool is made on first use with this count; lowering it later uses fewer.
    nonisolated(unsafe) public static var threadCount: Int = defaultThreadCount()

    public static func defaultThreadCount() -> Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Made on first use.
    nonisolated(unsafe) static var pool = SpinPool(threadCount: threadCount)

    /// Runs `body(range)` over disjoint chunks covering `0..<count`. `minChunk` is the
    /// smallest range worth a thread of its own.
    public static func forEachChunk(_ count: Int, minChunk: Int = 1,
                                    _ body: (Range<Int>) -> Void) {
        forEachChunk(count, minChunk: minChunk) { range, _ in body(range) }
    }

    /// As above, also passing the index (0..<threadCount) of the thread running the
    /// chunk, unique among threads running at once, for per-thread scratch.
    public static func forEachChunk(_ count: Int, minChunk: Int = 1,
                                    _ body: (Range<Int>, Int) -> Void) {
        let threads = min(threadCount, pool.threadCount)
        // One chunk per thread: every chunk restarts a stream of weights from memory,
        // and four per thread measured slower everywhere (README, Threads). A worker
        // that starts late costs at most its lateness: the caller claims any chunk no
        // worker has taken.
        let chunks = min(threads, max(1, count / max(1, minChunk)))
        if threads <= 1 || chunks <= 1 {
            if count > 0 { body(0..<count, 0) }
            return
        }
        pool.run(chunks: chunks) { chunk, participant in
            let lo = count * chunk / chunks
            let hi = count * (chunk + 1) / chunks
            if lo < hi { body(lo..<hi, participant) }
        }
    }

    /// Runs `body(job, participant)` for every job in `0..<count`, each taken by
    /// whichever thread is free next: for jobs of uneven or unpredictable cost, where one
    /// fixed range per thread would leave a thread waiting.
    public static func forEachJob(_ count: Int, _ body: (Int, Int) -> Void) {
        // Every pool thread claims jobs, so a count lowered below the pool's takes fixed ranges.
        guard threadCount >= pool.threadCount else {
            return forEachChunk(count) { jobs, participant in for job in jobs { body(job, participant) } }
        }
        pool.run(chunks: count, body)
    }
}
