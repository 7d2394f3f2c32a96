// Byte-pair merging of one pre-token. Symbols start as the byte tokens of the piece and
// live in a doubly linked list; candidate pairs sit in a min-heap ordered by (merge rank,
// left position), so equal ranks merge leftmost first (as HF tokenizers and llama.cpp do).
// Stale heap entries are skipped when popped: a pair is still valid only if both symbols
// still hold the ids it was pushed with and are still adjacent. O(n log n) per piece.

/// Merge rules keyed by (leftId, rightId); the value packs (rank, mergedId).
struct MergeTable: Sendable {
    private var table: [UInt64: UInt64] = [:]

    init(capacity: Int) {
        table.reserveCapacity(capacity)
    }

    @inline(__always) private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Keeps the first (highest-priority) rule for a pair.
    mutating func insert(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let k = Self.key(left, right)
        if table[k] == nil { table[k] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged)) }
    }

    @inline(__always) func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        guard let v = table[Self.key(left, right)] else { return nil }
        return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
    }
}

struct MergeCandidate {
    var rank: Int32
    var left: Int32
    var right: Int32
    var leftId: Int32
    var rightId: Int32
    var merged: Int32

    @inline(__always) func precedes(_ o: MergeCandidate) -> Bool {
        rank < o.rank || (rank == o.rank && left < o.left)
    }
}

/// Per-encode scratch, reused for every piece so merging allocates only while buffers grow.
struct BPEScratch {
    var ids: [Int32] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap: [MergeCandidate] = []

    private static let dead: Int32 = -2

    /// Merges `byteIds` (the token ids of a piece's bytes) and appends the resulting ids to `out`.
    mutating func merge(_ byteIds: UnsafeBufferPointer<Int32>, merges: MergeTable, into out: inout [Int32]) {
        let n = byteIds.count
        if n == 0 { return }
        if n == 1 {
            out.append(byteIds[0])
            return
        }
        ids.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            ids.append(byteIds[i])
            prev.append(Int32(i - 1))
            next.append(Int32(i + 1))
        }
        for i in 0..<(n - 1) { pushPair(Int32(i), Int32(i + 1), merges) }

        while !heap.isEmpty {
            let top = popMin()
            let l = Int(top.left), r = Int(top.right)
            guard ids[l] == top.leftId, ids[r] == top.rightId, next[l] == top.right else { continue }
            ids[l] = top.merged
            ids[r] = Self.dead
            let after = next[r]
            next[l] = after
            if Int(after) < n { prev[Int(after)] = top.left }
            if prev[l] >= 0 { pushPair(prev[l], top.left, merges) }
            if Int(after) < n { pushPair(top.left, after, merges) }
        }

        var i = 0
        while i < n {
            out.append(ids[i])
            i = Int(next[i])
        }
    }

    @inline(__always) private mutating func pushPair(_ l: Int32, _ r: Int32, _ merges: MergeTable) {
        let a = ids[Int(l)], b = ids[Int(r)]
        guard a >= 0, b >= 0, let m = merges.lookup(a, b) else { return }
        heap.append(MergeCandidate(rank: m.rank, left: l, right: r, leftId: a, rightId: b, merged: m.merged))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    @inline(__always) private mutating func popMin() -> MergeCandidate {
        let top = heap[0]
        let last = heap.removeLast()
        if heap.isEmpty { return top }
        heap[0] = last
        var parent = 0
        let count = heap.count
        while true {
            let l = 2 * parent + 1
            if l >= count { break }
            var best = l
            if l + 1 < count && heap[l + 1].precedes(heap[l]) { best = l + 1 }
            guard heap[best].precedes(heap[parent]) else { break }
            heap.swapAt(best, parent)
            parent = best
        }
        return top
    }
}
