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

/// Hands out one span's cache lines a couple at a time from inside a kernel loop, so
/// the requests trickle out between arithmetic instead of stalling it in a burst.
@usableFromInline
struct PrefetchCursor {
    @usableFromInline var next: UnsafeRawPointer?
    @usableFromInline let end: UnsafeRawPointer?

    @inlinable init(_ span: PrefetchSpan?) {
        next = span?.start
        end = span.map { $0.start + $0.byteCount }
    }

    /// Requests the next two lines, if any are left.
    @inlinable @inline(__always)
    mutating func advance() {
        guard let line = next, let end, line < end else { return }
        graft_prefetch(line)
        graft_prefetch(line + 64)
        next = line + 128
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
