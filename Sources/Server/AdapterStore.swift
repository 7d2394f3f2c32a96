import Adapters
import Foundation
import Kernels

/// The adapters under `DATA/adapters/NAME/` (PEFT files), found once at start. Requests
/// name an adapter; its weights load on first use, in the requesting handler's task,
/// through an LRU cache shared by all requests.
public final class AdapterStore: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var directory: String
        public var created: Date
    }

    public let entries: [String: Entry]
    private let shape: BaseModelShape
    private let cache: AdapterCache
    private let precision: LoRAWeightPrecision

    /// Lists `dataDirectory/adapters`; a missing folder means no adapters. `cacheBytes`
    /// bounds the loaded adapters' weights (held as `precision`): the default 512 MiB
    /// keeps 54 rank-16 adapters on all seven projections of SmolLM2-135M as halves
    /// (about twice as many as int8: 1 byte a weight plus 12 bytes of scales a rank),
    /// more than the 32 sequences the engine runs at once by default, so a full batch of
    /// distinct adapters stays loaded.
    public init(dataDirectory: String, shape: BaseModelShape, cacheBytes: Int = 512 << 20,
                precision: LoRAWeightPrecision = .f16) throws {
        let root = URL(fileURLWithPath: dataDirectory).appendingPathComponent("adapters")
        let files = FileManager.default
        var entries: [String: Entry] = [:]
        if files.fileExists(atPath: root.path) {
            let folders = try files.contentsOfDirectory(at: root, includingPropertiesForKeys: [.isDirectoryKey, .creationDateKey])
            for folder in folders where (try? folder.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true {
                let created = (try? folder.resourceValues(forKeys: [.creationDateKey]).creationDate) ?? Date()
                let name = folder.lastPathComponent
                entries[name] = Entry(name: name, directory: folder.path, created: created)
            }
        }
        self.entries = entries
        self.shape = shape
        self.cache = AdapterCache(capacityBytes: cacheBytes)
        self.precision = precision
    }

    public var names: [String] { entries.keys.sorted() }
    public var loadedCount: Int { cache.loadedCount }

    /// The adapter's weights, loaded now if not cached. Only names found at start are
    /// served, so a request can never point the loader outside the data folder.
    func adapter(named name: String, model: String) throws(OpenAIError) -> LoRAAdapter {
        guard let entry = entries[name] else { throw .modelNotFound(model) }
        do {
            return try cache.adapter(for: name) {
                try LoRAAdapter.loadPEFT(directory: entry.directory, base: shape, precision: precision)
            }
        } catch {
            // A broken folder fails only the requests that name it.
            throw OpenAIError(status: .internalServerError, message: "The adapter '\(name)' cannot be loaded: \(error)",
                              type: "server_error", param: "model", code: "adapter_load_failed")
        }
    }
}
