/// Cuts one decode step's attention work items into chunks of about equal cost, not
/// equal count. A batch's sequences differ in length, and the engine's running
/// sequences keep their arrival order (decode rows without adapters, or of one adapter,
/// run oldest and so longest first), so an even split by count gave one thread most of
/// the keys and values to read: 32 sequences staggered from 1024 down to 32 positions ran at
/// three quarters of the speed of the same positions spread evenly.
///
/// Items are sequence-major, `itemsPerSequence` per sequence, all of a sequence's items
/// costing alike: the positions its rows attend over, plus a small fixed cost per item.
/// Which chunk runs an item never changes its arithmetic.
struct AttentionPartition {
    /// Chunks per thread when there are many items: threads take them as they come free,
    /// so a thread slowed by anything else still finishes with the others.
    static let chunksPerThread = 4

    let batch: ForwardBatch
    let itemsPerSequence: Int
    let chunks: Int
    private let totalCost: Int

    /// What one item of a sequence with `span`'s rows costs: causal rows attend over
    /// startPosition + 1 ... startPosition + rowCount positions.
    static func itemCost(_ span: SequenceSpan) -> Int {
        let n = span.rowCount
        return n * span.startPosition + n * (n + 1) / 2 + fixedItemCost
    }

    /// An item's cost beyond its positions (its queries, softmax and output), in positions.
    static let fixedItemCost = 16

    init(batch: ForwardBatch, itemsPerSequence: Int, chunks: Int) {
        (self.batch, self.itemsPerSequence, self.chunks) = (batch, itemsPerSequence, chunks)
        var total = 0
        for i in 0..<batch.sequenceCount { total += Self.itemCost(batch.spans[i]) * itemsPerSequence }
        totalCost = total
    }

    /// The items of chunk `k` (0..<chunks); together the chunks cover every item once.
    func items(ofChunk k: Int) -> Range<Int> {
        firstItem(ofChunk: k)..<firstItem(ofChunk: k + 1)
    }

    /// The item in whose cost k/chunks of the total falls.
    private func firstItem(ofChunk k: Int) -> Int {
        let items = batch.sequenceCount * itemsPerSequence
        guard k < chunks else { return items }
        let target = totalCost * k / chunks
        var before = 0
        for i in 0..<batch.sequenceCount {
            let cost = Self.itemCost(batch.spans[i])
            let sequenceCost = cost * itemsPerSequence
            if before + sequenceCost > target { return i * itemsPerSequence + (target - before) / cost }
            before += sequenceCost
        }
        return items
    }
}
