import Testing
import Kernels

@Suite struct ParallelTests {
    /// Every index of every job runs exactly once, with jobs of alternating small and
    /// large chunk counts posted back to back: a worker still finishing its claims on
    /// one job must never take a chunk of the next (it did, once, when the chunk count
    /// lived outside the claim word, and ran a closure after its job had returned).
    @Test func everyIndexRunsExactlyOncePerJob() {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        counts.initialize(repeating: 0, count: 64)
        defer { counts.deallocate() }
        var wrong = 0
        for job in 0..<100_000 {
            let count = job % 2 == 0 ? 2 : 64
            Parallel.forEachChunk(count) { range in
                for i in range { counts[i] += 1 }
            }
            for i in 0..<count {
                if counts[i] != 1 { wrong += 1 }
                counts[i] = 0
            }
        }
        #expect(wrong == 0)
    }

    /// forEachJob runs every job once, each on a participant index within the thread count.
    @Test func everyJobRunsOnceOnAValidParticipant() {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 40)
        let participants = UnsafeMutablePointer<Int>.allocate(capacity: 40)
        defer { counts.deallocate(); participants.deallocate() }
        var wrong = 0
        for _ in 0..<20_000 {
            counts.initialize(repeating: 0, count: 40)
            Parallel.forEachJob(40) { job, participant in
                counts[job] += 1
                participants[job] = participant
            }
            wrong += (0..<40).filter { counts[$0] != 1 || !(0..<Parallel.threadCount).contains(participants[$0]) }.count
        }
        #expect(wrong == 0)
    }
}
