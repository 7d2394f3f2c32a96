import Foundation

/// Loaded adapters by key ("name@version" or a folder path), least recently used
/// first out when their bytes pass the budget.
///
/// Adapters are immutable, and every request holds its adapter strongly, so evicting
/// one only drops the cache's reference: a sequence still running on it keeps it (and
/// its memory) until it finishes, and nothing can change under it. Loading runs on the
/// caller's thread outside the lock, never on the engine thread, so a slow load does
/// not stall the batch.
public final class AdapterCache: @unchecked Sendable {
    public let capacityBytes: Int
    private let lock = NSLock()
    private var entries: [String: LoRAAdapter] = [:]
    /// Keys from least to most recently used.
    private var order: [String] = []
    private var bytes = 0
    public private(set) var hits = 0
    public private(set) var misses = 0
    public private(set) var evictions = 0

    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    /// The cached adapter for `key`, or the result of `load()` (cached, evicting the
    /// least recently used beyond the budget). A failed load caches nothing.
    public func adapter(for key: String, load: () throws -> LoRAAdapter) throws -> LoRAAdapter {
        if let hit = lookup(key) { return hit }
        let loaded = try load()
        lock.lock()
        defer { lock.unlock() }
        if let raced = entries[key] {  // another caller loaded it meanwhile: keep one copy
            touch(key)
            return raced
        }
        entries[key] = loaded
        order.append(key)
        bytes += loaded.byteCount
        while bytes > capacityBytes, order.count > 1, let oldest = order.first {
            order.removeFirst()
            bytes -= entries.removeValue(forKey: oldest)!.byteCount
            evictions += 1
        }
        return loaded
    }

    /// Drops `key` (an adapter version deleted from the store); running sequences keep theirs.
    public func remove(_ key: String) {
        lock.lock()
        defer { lock.unlock() }
        if let removed = entries.removeValue(forKey: key) {
            bytes -= removed.byteCount
            order.removeAll { $0 == key }
        }
    }

    public var loadedCount: Int { lock.withLock { entries.count } }
    public var loadedBytes: Int { lock.withLock { bytes } }
    public func contains(_ key: String) -> Bool { lock.withLock { entries[key] != nil } }

    private func lookup(_ key: String) -> LoRAAdapter? {
        lock.lock()
        defer { lock.unlock() }
        guard let hit = entries[key] else {
            misses += 1
            return nil
        }
        hits += 1
        touch(key)
        return hit
    }

    private func touch(_ key: String) {
        order.removeAll { $0 == key }
        order.append(key)
    }
}
