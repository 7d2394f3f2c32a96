import Adapters
import Testing

@Suite struct AdapterCacheTests {
    let shape = BaseModelShape(nLayers: 2, dim: 64, hiddenDim: 96, nHeads: 4, nKVHeads: 2, headDim: 16)

    @Test func leastRecentlyUsedLeavesFirstAndHitsDoNotReload() throws {
        // Given a budget of two adapters
        let size = LoRAAdapter.random(shape: shape, rank: 4, seed: 0).byteCount
        let cache = AdapterCache(capacityBytes: 2 * size)
        var loads = 0
        func get(_ key: String) throws -> LoRAAdapter {
            try cache.adapter(for: key) { loads += 1; return LoRAAdapter.random(shape: shape, rank: 4, seed: 1) }
        }
        // When a, b are loaded, a is used again, then c arrives
        let a = try get("a")
        _ = try get("b")
        #expect(try get("a") === a)
        _ = try get("c")
        // Then b (least recently used) left, a and c stayed, and a was loaded once
        #expect(cache.contains("a") && cache.contains("c") && !cache.contains("b"))
        #expect(loads == 3 && cache.evictions == 1 && cache.loadedBytes == 2 * size)
    }

    @Test func anEvictedAdapterStaysAliveWhileARequestHoldsIt() throws {
        // Given a budget of one adapter and a request holding "a"
        let size = LoRAAdapter.random(shape: shape, rank: 4, seed: 0).byteCount
        let cache = AdapterCache(capacityBytes: size)
        var held: LoRAAdapter? = try cache.adapter(for: "a") { LoRAAdapter.random(shape: shape, rank: 4, seed: 2) }
        weak var watch = held
        let before = held!.weights(layer: 1, target: .down)!.aRowMajor()[3]
        // When "b" evicts it
        _ = try cache.adapter(for: "b") { LoRAAdapter.random(shape: shape, rank: 4, seed: 3) }
        #expect(!cache.contains("a"))
        // Then the holder still reads the same weights, and the memory goes with the last holder
        #expect(held!.weights(layer: 1, target: .down)!.aRowMajor()[3] == before)
        held = nil
        #expect(watch == nil)
    }

    @Test func aFailedLoadCachesNothing() {
        struct Broken: Error {}
        let cache = AdapterCache(capacityBytes: 1 << 30)
        #expect(throws: Broken.self) { try cache.adapter(for: "x") { throw Broken() } }
        #expect(!cache.contains("x") && cache.loadedCount == 0)
    }
}
