import Foundation
import Synchronization

/// A fixed set of worker threads that run one job at a time with the caller as
/// worker 0. Kernels hand it work hundreds of times per token, so waking must cost
/// well under a microsecond: idle workers spin on a generation counter for a while
/// before they sleep. (Dispatch's concurrentPerform, measured here, made decode on 2
/// threads slower than on 1.)
final class SpinPool: @unchecked Sendable {
    let threadCount: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let wake = NSCondition()
    // Written by the caller before it publishes a new generation (release) and read
    // by workers after they observe it (acquire).
    private var task: ((Int) -> Void)?
    private var taskCount = 0

    /// Spins before a worker sleeps: roughly 50-100 µs, longer than the gap between
    /// two kernels of one forward pass.
    private static let spinLimit = 20_000

    init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        for index in 1..<self.threadCount {
            let thread = Thread { [unowned self] in self.workerLoop(index: index) }
            thread.name = "graft-kernel-\(index)"
            thread.start()
        }
    }

    /// Runs body(0..<count) across the workers (count ≤ threadCount) and returns when
    /// all are done. A call made while another job runs (nested, or from a second
    /// thread) runs inline instead of waiting.
    func run(_ count: Int, _ body: (Int) -> Void) {
        precondition(count <= threadCount)
        guard count > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            task = body
            taskCount = count
            pending.store(count - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            body(0)
            while pending.load(ordering: .acquiring) > 0 {}
            task = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func workerLoop(index: Int) {
        // Generation 0 is the pool's start: a job posted before this thread first
        // runs must still be seen as new.
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins > Self.spinLimit { sleep(until: seen) }
            }
            seen = generation.load(ordering: .acquiring)
            if index < taskCount {
                perform(index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Runs the task and drops this thread's reference to it before returning: the
    /// caller's closure must not outlive `run`, which ends once `pending` reaches 0.
    @inline(never)
    private func perform(_ index: Int) {
        task?(index)
    }

    private func sleep(until seen: Int) {
        wake.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        wake.unlock()
    }
}
