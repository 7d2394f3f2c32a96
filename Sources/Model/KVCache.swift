import Kernels

/// Key/value storage for every layer, in fixed-size blocks of `blockSize` positions,
/// handed out by a free list. A sequence owns a `BlockTable` listing its blocks in
/// position order; blocks are never shared, so a freed block can be reused at once.
/// Keys and values are stored as `precision` (f32, or f16 for half the memory).
public final class KVCache: @unchecked Sendable {
    /// Positions per block unless a caller asks otherwise. Attention reads a sequence's
    /// keys and values one block tile (a KV head's positions of one block) at a time,
    /// and the blocks lie scattered, so every tile starts a new memory stream. Against
    /// 16 positions (4 KB tiles of f32), 32 took a median 9% less attention time (0-26%)
    /// in eleven alternating pairs of 32 decode rows at 128 and 512 positions, f32 and
    /// f16; 64 measured no better than 32, and a sequence wastes half a block on average.
    public static let defaultBlockSize = 32

    public let precision: KVPrecision
    public let nLayers: Int
    public let nBlocks: Int
    public let blockSize: Int
    public let nKVHeads: Int
    public let headDim: Int
    private let keys: UnsafeMutableRawPointer
    private let values: UnsafeMutableRawPointer
    private let freeList: UnsafeMutablePointer<Int32>
    public private(set) var freeCount: Int

    /// Elements per block per layer.
    private var blockStride: Int { nKVHeads * blockSize * headDim }

    public init(config: LlamaConfig, nBlocks: Int, blockSize: Int = defaultBlockSize, precision: KVPrecision = .f32) {
        precondition(nBlocks > 0 && blockSize > 0 && blockSize % 8 == 0, "KV blocks hold a positive multiple of 8 positions")
        self.precision = precision
        nLayers = config.nLayers
        self.nBlocks = nBlocks
        self.blockSize = blockSize
        nKVHeads = config.nKVHeads
        headDim = config.headDim
        let bytes = nLayers * nBlocks * config.nKVHeads * blockSize * config.headDim * precision.bytesPerElement
        keys = .allocate(byteCount: bytes, alignment: 64)
        values = .allocate(byteCount: bytes, alignment: 64)
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        values.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        freeList = .allocate(capacity: nBlocks)
        // Pop from the end: hand out low block numbers first.
        for i in 0..<nBlocks { freeList[i] = Int32(nBlocks - 1 - i) }
        freeCount = nBlocks
    }

    /// Blocks that `positions` positions of one sequence need.
    public func blocksNeeded(positions: Int) -> Int { (positions + blockSize - 1) / blockSize }

    /// Bytes of K and V storage for one position, over all layers.
    public static func bytesPerPosition(config: LlamaConfig, precision: KVPrecision = .f32) -> Int {
        2 * config.nLayers * config.kvDim * precision.bytesPerElement
    }

    /// Blocks of `blockSize` positions whose keys and values fit in `bytes`.
    public static func blocks(fitting bytes: Int, config: LlamaConfig, blockSize: Int,
                              precision: KVPrecision) -> Int {
        bytes / (bytesPerPosition(config: config, precision: precision) * blockSize)
    }

    public func layer(_ l: Int) -> PagedKVLayer {
        let offset = l * nBlocks * blockStride * precision.bytesPerElement
        return PagedKVLayer(keys: keys + offset, values: values + offset, precision: precision,
                            blockSize: blockSize, nKVHeads: nKVHeads, headDim: headDim)
    }

    /// Takes one free block, or nil when the cache is full.
    public func allocateBlock() -> Int32? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        return freeList[freeCount]
    }

    public func free(_ block: Int32) {
        precondition(freeCount < nBlocks && block >= 0 && Int(block) < nBlocks, "double free of KV block \(block)")
        freeList[freeCount] = block
        freeCount += 1
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        freeList.deallocate()
    }
}

/// The blocks of one sequence, in position order. Capacity is fixed at creation
/// (the context limit), so growing never reallocates.
public final class BlockTable: @unchecked Sendable {
    public let capacity: Int
    public let entries: UnsafeMutablePointer<Int32>
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = capacity
        entries = .allocate(capacity: max(1, capacity))
    }

    /// Makes room for `positions` positions, taking blocks from `cache`. Returns false
    /// (having taken nothing) when the cache has too few free blocks.
    public func reserve(positions: Int, in cache: KVCache) -> Bool {
        let needed = cache.blocksNeeded(positions: positions)
        precondition(needed <= capacity, "sequence of \(positions) positions exceeds its block table")
        guard needed > count else { return true }
        guard cache.freeCount >= needed - count else { return false }
        while count < needed {
            entries[count] = cache.allocateBlock()!
            count += 1
        }
        return true
    }

    /// Returns every block to `cache`.
    public func release(to cache: KVCache) {
        for i in 0..<count { cache.free(entries[i]) }
        count = 0
    }

    deinit { entries.deallocate() }
}
