import Foundation
import Synchronization

/// A fixed set of worker threads that help the calling thread through one job at a
/// time. Kernels hand it work hundreds of times per token, so joining must cost well
/// under a microsecond: idle workers spin on a generation counter for a short while
/// before they sleep. (Dispatch's concurrentPerform, measured here, made decode on 2
/// threads slower than on 1.)
///
/// Chunks are claimed dynamically, and the caller claims too: when a worker is slow
/// to wake (asleep, or its core busy with another process) the caller simply runs
/// more chunks itself instead of waiting for it.
final class SpinPool: @unchecked Sendable {
    let threadCount: Int
    /// Job generation (high 32 bits), the job's chunk count (16 bits) and the next
    /// unclaimed chunk (low 16 bits), in one word, so a worker can never claim a chunk
    /// of a job it did not see posted, nor judge one job's index by another's count
    /// (the count of the next job is written before its generation is published).
    private let claim = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let wake = NSCondition()
    // Written by the caller before it publishes a job (release); read by a worker
    // only after it has claimed a chunk, which keeps the job alive until that chunk
    // is finished.
    private var task: ((Int, Int) -> Void)?

    /// Idle spins before a worker sleeps: tens of microseconds, longer than the gap
    /// between two kernels of one forward pass, short enough not to steal a busy core.
    private static let spinLimit = 20_000

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        for participant in 1..<self.threadCount {
            let thread = Thread { [unowned self] in self.workerLoop(participant: participant) }
            thread.name = "graft-kernel-\(participant)"
            thread.start()
        }
    }

    /// Runs body(chunk, participant) for every chunk in 0..<chunks and returns when
    /// all are done. `participant` (0..<threadCount) is unique among the threads
    /// running at once, for per-thread scratch. A call made while another job runs
    /// (nested, or from a second thread) runs inline instead of waiting.
    func run(chunks: Int, _ body: (Int, Int) -> Void) {
        precondition(chunks <= 0xFFFF, "a job holds at most 65535 chunks")
        guard chunks > 1, threadCount > 1,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for chunk in 0..<chunks { body(chunk, 0) }
            return
        }
        withoutActuallyEscaping(body) { body in
            task = body
            finished.store(0, ordering: .relaxed)
            let generation = (claim.load(ordering: .relaxed) >> 32) &+ 1
            claim.store(generation << 32 | UInt64(chunks) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            while let chunk = claimChunk(generation: generation) {
                body(chunk, 0)
                finished.add(1, ordering: .releasing)
            }
            while finished.load(ordering: .acquiring) < chunks {}
            task = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Takes the next chunk of job `generation`, or nil when none is left.
    private func claimChunk(generation: UInt64) -> Int? {
        var current = claim.load(ordering: .acquiring)
        while current >> 32 == generation, current & 0xFFFF < (current >> 16) & 0xFFFF {
            let (exchanged, original) = claim.compareExchange(
                expected: current, desired: current &+ 1, ordering: .acquiringAndReleasing)
            if exchanged { return Int(current & 0xFFFF) }
            current = original
        }
        return nil
    }

    private func workerLoop(participant: Int) {
        // Generation 0 is the pool's start: a job posted before this thread first
        // runs must still be seen as new.
        var seen: UInt64 = 0
        while true {
            var spins = 0
            while claim.load(ordering: .acquiring) >> 32 == seen {
                spins += 1
                if spins > Self.spinLimit { sleep(whileGeneration: seen) }
            }
            seen = claim.load(ordering: .acquiring) >> 32
            while let chunk = claimChunk(generation: seen) {
                perform(chunk, participant)
                finished.add(1, ordering: .releasing)
            }
        }
    }

    /// Runs one chunk and drops this thread's reference to the task before returning:
    /// the caller's closure must not outlive `run`.
    @inline(never)
    private func perform(_ chunk: Int, _ participant: Int) {
        task?(chunk, participant)
    }

    private func sleep(whileGeneration seen: UInt64) {
        wake.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while claim.load(ordering: .sequentiallyConsistent) >> 32 == seen { wake.wait() }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        wake.unlock()
    }
}
