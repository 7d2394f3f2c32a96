/// Watches generated text for stop strings. Text that could still be the start of a
/// stop string is held back, so a client never sees any part of a stop string.
public struct StopSequenceMatcher: Sendable {
    public let stops: [String]
    private var pending = ""

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Feeds newly decoded text. Returns the text safe to emit, and whether a stop
    /// string was found (the text up to it is emitted, the rest dropped).
    public mutating func feed(_ text: String) -> (emit: String, stopped: Bool) {
        guard !stops.isEmpty else { return (text, false) }
        pending += text
        var earliest: String.Index?
        for stop in stops {
            if let range = pending.range(of: stop), earliest.map({ range.lowerBound < $0 }) ?? true {
                earliest = range.lowerBound
            }
        }
        if let earliest {
            let emit = String(pending[..<earliest])
            pending = ""
            return (emit, true)
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        var hold = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, pending.count), to: hold, by: -1)
            where pending.hasSuffix(stop.prefix(length)) {
                hold = length
                break
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -hold)
        let emit = String(pending[..<cut])
        pending = String(pending[cut...])
        return (emit, false)
    }

    /// Text still held back when generation ends for another reason.
    public mutating func flush() -> String {
        defer { pending = "" }
        return pending
    }
}
