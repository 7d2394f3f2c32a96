import Adapters
import Kernels
import Model

extension BatchEngine {
    /// One iteration: admit waiting sequences, give every running one its rows (one
    /// token when decoding, a chunk when prefilling), run the forward pass, sample.
    func step() {
        admitWaiting()
        var budget = configuration.maxTokensPerStep
        // Emptied again after the step, so no finished sequence (or its adapter) is
        // kept alive by the schedule while the engine idles.
        defer { scheduled.removeAll(keepingCapacity: true) }
        // Decoding sequences first, so prompts never starve them; then prompt chunks.
        for decoding in [true, false] {
            var index = 0
            while index < running.count {
                let sequence = running[index]
                index += 1
                guard (sequence.pendingTokens == 1) == decoding, budget > 0,
                      !scheduled.contains(where: { $0.sequence === sequence }) else { continue }
                guard let rows = chunkRows(pending: sequence.pendingTokens, budget: budget) else { continue }
                guard reserveBlocks(for: sequence, positions: sequence.computed + rows) else {
                    // Preempting may have removed sequences before `index`; rescan.
                    index = 0
                    continue
                }
                scheduled.append((sequence, rows))
                budget -= rows
            }
        }
        scheduled.removeAll { entry in !running.contains { $0 === entry.sequence } }
        guard !scheduled.isEmpty else { return }

        // Decoding rows first, then prompt chunks (the forward pass takes the rowwise and
        // gemm paths by that kind); within each, rows of one adapter sit together so
        // each adapter runs one small pair of products.
        scheduled.sort { ($0.rows > 1 ? 1 : 0, key($0.sequence)) < ($1.rows > 1 ? 1 : 0, key($1.sequence)) }
        batch.reset()
        logitIndex.removeAll(keepingCapacity: true)
        for (sequence, rows) in scheduled {
            let completes = sequence.computed + rows == sequence.tokens.count
            let first = batch.add(tokens: sequence.tokens[sequence.computed..<(sequence.computed + rows)].lazy.map { Int32($0) },
                                  startPosition: sequence.computed, blockTable: sequence.blocks.entries,
                                  logits: completes ? .last : .none,
                                  adapter: sequence.request.adapter)
            logitIndex.append(first)
        }
        model.forward(batch: batch, cache: cache, state: state)
        stepsRun += 1

        for (i, entry) in scheduled.enumerated() {
            entry.sequence.computed += entry.rows
            if logitIndex[i] >= 0 {
                sampleNext(entry.sequence, logits: state.logits + logitIndex[i] * model.config.vocabSize)
            }
        }
    }

    /// Rows to run for a sequence with `pending` uncomputed tokens. A prompt chunk is
    /// never a single row (single rows take the decode path, so a prompt token must not
    /// become one because of how the budget fell) and never leaves a single row behind.
    /// nil: nothing fits this step.
    private func chunkRows(pending: Int, budget: Int) -> Int? {
        if pending == 1 { return budget >= 1 ? 1 : nil }
        var rows = min(pending, budget)
        if pending - rows == 1 { rows -= 1 }
        return rows >= 2 ? rows : nil
    }

    private func key(_ sequence: SequenceState) -> UInt {
        sequence.request.adapter.map { UInt(bitPattern: ObjectIdentifier($0)) } ?? 0
    }

    /// Moves waiting sequences to running, oldest first, while there is room for
    /// their whole current token list plus one block of headroom.
    private func admitWaiting() {
        while let next = waiting.first, running.count < configuration.maxRunningSequences {
            let needed = cache.blocksNeeded(positions: next.tokens.count) + 1
            guard cache.freeCount >= needed || running.isEmpty else { break }
            waiting.removeFirst()
            admissions += 1
            next.admittedAt = admissions
            running.append(next)
        }
    }

    /// Makes room in the cache for `positions` positions of `sequence`, preempting the
    /// most recently admitted other sequences when blocks run out (they go back to the
    /// front of the queue and recompute later). False when `sequence` itself was
    /// preempted or finished because it cannot fit.
    private func reserveBlocks(for sequence: SequenceState, positions: Int) -> Bool {
        while !sequence.blocks.reserve(positions: positions, in: cache) {
            let victims = running.filter { $0 !== sequence && $0.blocks.count > 0 }
            guard let victim = victims.max(by: { $0.admittedAt < $1.admittedAt }) else {
                // Alone and still too big: only possible when the cache is smaller than
                // one sequence's context, which validation rules out.
                running.removeAll { $0 === sequence }
                finish(sequence, .length)
                return false
            }
            preempt(victim)
        }
        return true
    }

    private func preempt(_ sequence: SequenceState) {
        sequence.blocks.release(to: cache)
        sequence.computed = 0
        running.removeAll { $0 === sequence }
        waiting.insert(sequence, at: 0)
        preemptions += 1
    }

    /// Samples the next token of `sequence` from its logits row and emits it.
    private func sampleNext(_ sequence: SequenceState, logits: UnsafeMutablePointer<Float>) {
        let request = sequence.request
        sequence.sampler.applyPenalties(logits: logits, counts: sequence.counts)
        let token = sequence.sampler.sample(logits: logits)
        if stopTokens.contains(token) && !request.ignoreEndOfGeneration {
            running.removeAll { $0 === sequence }
            finish(sequence, .stop)
            return
        }
        let logprob = request.topLogprobs.map {
            TokenLogprob.compute(logits: logits, count: model.config.vocabSize, token: token, topCount: $0)
        }
        sequence.tokens.append(token)
        sequence.counts[token, default: 0] += 1
        let (text, stopped) = sequence.stopMatcher.feed(sequence.detokenizer.append(token))
        sequence.continuation.yield(.token(id: token, text: text, logprob: logprob))
        if stopped || sequence.generatedCount >= request.maxTokens {
            running.removeAll { $0 === sequence }
            finish(sequence, stopped ? .stop : .length, stopString: stopped)
        }
    }
}
