import Engine
import Foundation
import Testing

@Suite struct SamplerTests {
    let logits: [Float] = [2.0, 1.0, 0.5, 3.0, -1.0, 2.9]

    func sampleMany(_ p: SamplingParameters, _ n: Int = 4000) -> [Int] {
        let sampler = Sampler(parameters: p, vocabSize: logits.count)
        return (0..<n).map { _ in sampler.sample(logits: logits) }
    }

    @Test func greedyPicksArgmaxAndLowestIndexOnTies() {
        // Given logits with a unique max and a tie
        // When sampled greedily
        // Then the argmax wins; on a tie the lower index wins
        #expect(sampleMany(.greedy, 5) == Array(repeating: 3, count: 5))
        let tied: [Float] = [1, 5, 5, 0]
        #expect(Sampler.argmax(tied, count: tied.count) == 1)
    }

    @Test func sameSeedSameSamplesDifferentSeedDifferentSamples() {
        // Given two samplers with the same seed and one with another
        let a = sampleMany(SamplingParameters(temperature: 1, seed: 42), 200)
        let b = sampleMany(SamplingParameters(temperature: 1, seed: 42), 200)
        let c = sampleMany(SamplingParameters(temperature: 1, seed: 43), 200)
        // Then the same seed reproduces and another seed differs
        #expect(a == b)
        #expect(a != c)
    }

    @Test func topKKeepsOnlyTheKMostLikely() {
        // When sampling with top_k 2
        let picks = Set(sampleMany(SamplingParameters(temperature: 1, topK: 2, seed: 1)))
        // Then only the two largest logits appear
        #expect(picks == [3, 5])
    }

    @Test func topPKeepsTheNucleus() {
        // Given probabilities at temperature 1
        let e = logits.map { exp(Double($0)) }
        let total = e.reduce(0, +)
        let probs = e.map { $0 / total }
        // the two most likely (ids 3 and 5) hold under 0.8 of the mass, the top three more
        #expect(probs[3] + probs[5] < 0.8 && probs[3] + probs[5] + probs[0] > 0.8)
        // When sampling with top_p 0.8
        let picks = Set(sampleMany(SamplingParameters(temperature: 1, topP: 0.8, seed: 2)))
        // Then exactly the top three appear
        #expect(picks == [3, 5, 0])
    }

    @Test func samplingFrequenciesFollowTheSoftmax() {
        // Given temperature 0.5
        let n = 20000
        let picks = sampleMany(SamplingParameters(temperature: 0.5, seed: 3), n)
        let e = logits.map { exp(Double($0) / 0.5) }
        let total = e.reduce(0, +)
        // Then each token's frequency is near its probability (5 standard deviations)
        for id in logits.indices {
            let p = e[id] / total
            let observed = Double(picks.filter { $0 == id }.count) / Double(n)
            #expect(abs(observed - p) < 5 * (p * (1 - p) / Double(n)).squareRoot() + 1e-3, "token \(id)")
        }
    }

    @Test func invalidParametersAreNamed() {
        #expect(SamplingParameters(temperature: -1).validationError?.contains("temperature") == true)
        #expect(SamplingParameters(topP: 0).validationError?.contains("top_p") == true)
        #expect(SamplingParameters(topK: -3).validationError?.contains("top_k") == true)
        #expect(SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9).validationError == nil)
    }
}
