import Dispatch
import Foundation

/// Splits `0..<count` into one contiguous range per worker and runs `body` on each,
/// in parallel. Kernels parallelise over output rows this way (the OpenMP analog);
/// with `count` small the work runs inline to skip the dispatch cost.
public enum Parallel {
    /// Worker count; set once at start-up (before any kernel runs) from the CLI's
    /// `--threads` option.
    nonisolated(unsafe) public static var threadCount: Int = defaultThreadCount()

    public static func defaultThreadCount() -> Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs `body(range)` over disjoint chunks covering `0..<count`. `minChunk` is the
    /// smallest range worth a thread of its own.
    @inlinable
    public static func forEachChunk(_ count: Int, minChunk: Int = 1,
                                    _ body: (Range<Int>) -> Void) {
        forEachChunk(count, minChunk: minChunk) { range, _ in body(range) }
    }

    /// As above, also passing the worker's index (0..<threadCount), so a chunk can use
    /// that worker's slice of a scratch buffer.
    @inlinable
    public static func forEachChunk(_ count: Int, minChunk: Int = 1,
                                    _ body: (Range<Int>, Int) -> Void) {
        let workers = min(threadCount, max(1, count / max(1, minChunk)))
        if workers <= 1 {
            if count > 0 { body(0..<count, 0) }
            return
        }
        // The chunks are disjoint and concurrentPerform returns only when all are
        // done, so handing the non-Sendable body to the workers is safe.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = count * w / workers
                let hi = count * (w + 1) / workers
                if lo < hi { shared.value(lo..<hi, w) }
            }
        }
    }
}

@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}
