import Foundation

/// Picks tokens from logits with temperature, top-k and top-p. One sampler serves one
/// sequence: it owns that sequence's random state and vocabulary-sized scratch, made
/// once, so sampling allocates nothing.
public final class Sampler: @unchecked Sendable {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256
    private let vocabSize: Int
    private let candidates: UnsafeMutablePointer<Int32>
    private let probs: UnsafeMutablePointer<Float>

    public init(parameters: SamplingParameters, vocabSize: Int) {
        self.parameters = parameters
        self.vocabSize = vocabSize
        rng = Xoshiro256(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        candidates = .allocate(capacity: vocabSize)
        probs = .allocate(capacity: vocabSize)
    }

    deinit {
        candidates.deallocate()
        probs.deallocate()
    }

    /// Index of the largest logit; the lowest index wins a tie.
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = logits[0]
        for i in 1..<count where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// Applies the presence and frequency penalties in place. `counts` maps each token
    /// generated so far to how often it appeared.
    public func applyPenalties(logits: UnsafeMutablePointer<Float>, counts: [Int: Int]) {
        let p = parameters
        guard p.hasPenalties else { return }
        for (token, count) in counts {
            logits[token] -= p.presencePenalty + p.frequencyPenalty * Float(count)
        }
    }

    public func sample(logits: UnsafePointer<Float>) -> Int {
        let p = parameters
        if p.temperature == 0 || p.topK == 1 { return Self.argmax(logits, count: vocabSize) }

        // Softmax at temperature over the whole vocabulary.
        let maxLogit = logits[Self.argmax(logits, count: vocabSize)]
        let invT = 1 / p.temperature
        var total: Float = 0
        for i in 0..<vocabSize {
            let e = Foundation.exp((logits[i] - maxLogit) * invT)
            probs[i] = e
            total += e
        }
        // Candidates: every token whose probability can matter. With top-p alone,
        // tokens at or below (1-p)/V together hold at most 1-p of the mass, so the
        // nucleus never needs them; this keeps the sort small.
        let threshold = p.topP < 1 && p.topK == 0 ? (1 - p.topP) / Float(vocabSize) * total : 0
        var n = 0
        for i in 0..<vocabSize where probs[i] > threshold {
            candidates[n] = Int32(i)
            n += 1
        }
        let probs = self.probs
        var sorted = UnsafeMutableBufferPointer(start: candidates, count: n)
        sorted.sort { a, b in
            let pa = probs[Int(a)], pb = probs[Int(b)]
            return pa != pb ? pa > pb : a < b
        }
        if p.topK > 0 { n = min(n, p.topK) }
        var kept: Float = 0
        for i in 0..<n { kept += probs[Int(candidates[i])] }
        if p.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<n {
                cumulative += probs[Int(candidates[i])]
                if cumulative >= p.topP * kept {
                    n = i + 1
                    kept = cumulative
                    break
                }
            }
        }
        let r = rng.nextUnitFloat() * kept
        var cumulative: Float = 0
        for i in 0..<n {
            cumulative += probs[Int(candidates[i])]
            if r < cumulative { return Int(candidates[i]) }
        }
        return Int(candidates[n - 1])
    }
}
