import Engine
import Testing

@Suite struct StopAndPenaltyTests {
    @Test func stopStringSplitAcrossChunksIsNeverEmitted() {
        // Given a matcher for "END" and text arriving in pieces that split the stop string
        var matcher = StopSequenceMatcher(stops: ["END", "xyz"])
        var emitted = ""
        var stopped = false
        // When the pieces are fed
        for piece in ["Hello E", "N", "ope, then E", "N", "D and more"] where !stopped {
            let (text, stop) = matcher.feed(piece)
            emitted += text
            stopped = stop
        }
        // Then everything before the stop string came out, nothing of it or after it
        #expect(stopped)
        #expect(emitted == "Hello ENope, then ")
    }

    @Test func heldBackTextIsReleasedWhenNoStopFollows() {
        // Given text ending in a possible stop prefix
        var matcher = StopSequenceMatcher(stops: ["###"])
        let (text, stopped) = matcher.feed("answer #")
        // Then the prefix is held back until the end, and flush returns it
        #expect(text == "answer " && !stopped)
        #expect(matcher.flush() == "#")
    }

    @Test func presenceAndFrequencyPenaltiesFollowOpenAIsFormula() {
        // Given logits and generated-token counts
        var logits: [Float] = [1, 2, 3, 4]
        let sampler = Sampler(parameters: SamplingParameters(temperature: 0, presencePenalty: 0.5, frequencyPenalty: 0.25),
                              vocabSize: 4)
        // When penalties apply for token 1 seen twice and token 3 once
        sampler.applyPenalties(logits: &logits, counts: [1: 2, 3: 1])
        // Then logit -= presence + frequency × count for seen tokens only
        #expect(logits == [1, 2 - 0.5 - 0.5, 3, 4 - 0.5 - 0.25])
    }

    @Test func logprobsAreLogSoftmaxWithSortedAlternatives() {
        // Given logits
        let logits: [Float] = [0, 1, 2, 3]
        // When logprobs of token 2 with the top 2 are computed
        let result = TokenLogprob.compute(logits: logits, count: 4, token: 2, topCount: 2)
        // Then they equal log softmax, best first
        let norm = (0..<4).map { Foundation.exp(Double($0)) }.reduce(0, +)
        #expect(abs(Double(result.logprob) - (2 - Foundation.log(norm))) < 1e-5)
        #expect(result.top.map(\.token) == [3, 2])
        #expect(abs(Double(result.top[0].logprob) - (3 - Foundation.log(norm))) < 1e-5)
    }
}
import Foundation
