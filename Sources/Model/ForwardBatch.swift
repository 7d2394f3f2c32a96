import Adapters

/// Which rows of a sequence's span produce logits.
public enum LogitsRequest: Sendable {
    case none, last, all
}

/// One sequence's contiguous run of rows in a batch: rows firstRow ..< firstRow+rowCount
/// hold consecutive positions startPosition ..< startPosition+rowCount.
public struct SequenceSpan {
    public var firstRow: Int
    public var rowCount: Int
    public var startPosition: Int
    public var blockTable: UnsafePointer<Int32>
    /// The LoRA applied to these rows, or nil. Unretained: the caller keeps the
    /// adapter alive while the batch runs (the engine holds it in the request).
    public var adapter: Unmanaged<LoRAAdapter>?
}

/// The rows of one forward pass: tokens of any number of sequences, each continuing
/// from its own position in its own KV blocks. Storage is allocated once at the
/// capacity given; filling a batch allocates nothing.
public final class ForwardBatch: @unchecked Sendable {
    public let maxRows: Int
    public let maxSequences: Int
    public let tokens: UnsafeMutablePointer<Int32>
    public let positions: UnsafeMutablePointer<Int32>
    public let spans: UnsafeMutablePointer<SequenceSpan>
    /// Rows whose logits the pass computes, in order; logits row i is for row logitRows[i].
    public let logitRows: UnsafeMutablePointer<Int32>
    public private(set) var rowCount = 0
    public private(set) var sequenceCount = 0
    public private(set) var logitCount = 0

    public init(maxRows: Int, maxSequences: Int) {
        self.maxRows = maxRows
        self.maxSequences = maxSequences
        tokens = .allocate(capacity: maxRows)
        positions = .allocate(capacity: maxRows)
        spans = .allocate(capacity: maxSequences)
        logitRows = .allocate(capacity: maxRows)
    }

    deinit {
        tokens.deallocate()
        positions.deallocate()
        spans.deallocate()
        logitRows.deallocate()
    }

    public func reset() {
        rowCount = 0
        sequenceCount = 0
        logitCount = 0
    }

    /// Appends a sequence's next tokens. Returns the index of its first logits row in
    /// the pass's output (or -1 when `logits` is `.none`).
    @discardableResult
    public func add<S: Sequence<Int32>>(tokens newTokens: S, startPosition: Int,
                                        blockTable: UnsafePointer<Int32>, logits: LogitsRequest,
                                        adapter: LoRAAdapter? = nil) -> Int {
        precondition(sequenceCount < maxSequences, "batch holds at most \(maxSequences) sequences")
        let first = rowCount
        for token in newTokens {
            precondition(rowCount < maxRows, "batch holds at most \(maxRows) rows")
            tokens[rowCount] = token
            positions[rowCount] = Int32(startPosition + rowCount - first)
            rowCount += 1
        }
        let count = rowCount - first
        precondition(count > 0, "a sequence in a batch needs at least one token")
        spans[sequenceCount] = SequenceSpan(firstRow: first, rowCount: count,
                                            startPosition: startPosition, blockTable: blockTable,
                                            adapter: adapter.map { Unmanaged.passUnretained($0) })
        sequenceCount += 1
        let firstLogit = logits == .none ? -1 : logitCount
        switch logits {
        case .none: break
        case .last:
            logitRows[logitCount] = Int32(rowCount - 1)
            logitCount += 1
        case .all:
            for r in first..<rowCount {
                logitRows[logitCount] = Int32(r)
                logitCount += 1
            }
        }
        return firstLogit
    }
}
