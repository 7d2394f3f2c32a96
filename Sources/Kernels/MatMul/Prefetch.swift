import CSIMD

/// Memory a compute-bound kernel pulls into cache while it works, for the job right
/// after it: the decode rows' adapter weights, read just after the base projection. In
/// a batch the base product is bound by arithmetic and leaves memory idle, while the
/// side path of 32 distinct adapters streams about 300 MB per step; issued from inside
/// the base kernel's loops, that traffic overlaps the arithmetic instead of following it.
public struct PrefetchSpan {
    public var start: UnsafeRawPointer
    public var byteCount: Int

    public init(start: UnsafeRawPointer, byteCount: Int) {
        (self.start, self.byteCount) = (start, byteCount)
    }
}

/// Hands out one span's cache lines a few at a time from inside a kernel loop, so the
/// requests trickle out between arithmetic instead of stalling it in a burst.
@usableFromInline
struct PrefetchCursor {
    @usableFromInline var next: UnsafeRawPointer?
    @usableFromInline let end: UnsafeRawPointer?
    @usableFromInline let linesPerStep: Int

    /// The whole span spread evenly over `steps` calls of `advance`.
    @inlinable init(_ span: PrefetchSpan?, steps: Int) {
        let lines = ((span?.byteCount ?? 0) + 63) / 64
        self.init(span, linesPerStep: (lines + max(steps, 1) - 1) / max(steps, 1))
    }

    /// By default two lines per `advance`, for loops with many short steps.
    @inlinable init(_ span: PrefetchSpan?, linesPerStep: Int = 2) {
        next = span?.start
        end = span.map { $0.start + $0.byteCount }
        self.linesPerStep = linesPerStep
    }

    /// Requests the next lines, if any are left.
    @inlinable @inline(__always)
    mutating func advance() {
        guard var line = next, let end else { return }
        for _ in 0..<linesPerStep where line < end {
            graft_prefetch(line)
            line += 64
        }
        next = line
    }
}

extension MatMul {
    /// Splits a chunk of weight rows into one part per prefetch span the chunk owns
    /// (spans are dealt to chunks in proportion to their rows) and runs body on each;
    /// with no span to own, body gets the whole chunk and nil. Which part computes an
    /// output never changes its arithmetic.
    @inlinable
    static func withPrefetchParts(_ rows: Range<Int>, of total: Int, _ spans: UnsafeBufferPointer<PrefetchSpan>,
                                  _ body: (Range<Int>, PrefetchSpan?) -> Void) {
        let first = spans.count * rows.lowerBound / total, end = spans.count * rows.upperBound / total
        guard end > first else { return body(rows, nil) }
        let parts = end - first
        for i in 0..<parts {
            let lo = rows.lowerBound + rows.count * i / parts, hi = rows.lowerBound + rows.count * (i + 1) / parts
            body(lo..<hi, spans[first + i])
        }
    }
}
