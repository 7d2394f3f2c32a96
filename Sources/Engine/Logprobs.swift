import Foundation

/// The log-probability of a sampled token and of the most likely alternatives, from
/// the model's distribution (after penalties, before temperature and truncation).
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int
    public var logprob: Float
    /// Most likely tokens first; empty unless top logprobs were asked for.
    public var top: [(token: Int, logprob: Float)]

    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.token == b.token && a.logprob == b.logprob
            && a.top.map(\.token) == b.top.map(\.token) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }

    /// log softmax(logits)[token], plus the `topCount` best entries.
    public static func compute(logits: UnsafePointer<Float>, count: Int, token: Int, topCount: Int) -> TokenLogprob {
        var maxLogit = -Float.infinity
        for i in 0..<count where logits[i] > maxLogit { maxLogit = logits[i] }
        var sum: Double = 0
        for i in 0..<count { sum += Double(Foundation.exp(logits[i] - maxLogit)) }
        let logNorm = maxLogit + Float(Foundation.log(sum))
        // Top entries by insertion into a small sorted list: topCount is at most 20.
        var top: [(token: Int, logprob: Float)] = []
        if topCount > 0 {
            top.reserveCapacity(topCount + 1)
            for i in 0..<count where top.count < topCount || logits[i] > top[top.count - 1].logprob {
                let entry = (token: i, logprob: logits[i])
                let at = top.firstIndex { $0.logprob < entry.logprob } ?? top.count
                top.insert(entry, at: at)
                if top.count > topCount { top.removeLast() }
            }
            for j in top.indices { top[j].logprob -= logNorm }
        }
        return TokenLogprob(token: token, logprob: logits[token] - logNorm, top: top)
    }
}
