import Adapters

/// A request's `model` field: "base" (the bare model), "base:adapter", or
/// "base:adapter@version". Only version 1 exists until the registry brings versions.
struct ModelName: Equatable {
    var adapter: String?

    static func parse(_ text: String, baseName: String) throws(OpenAIError) -> ModelName {
        if text == baseName { return ModelName(adapter: nil) }
        guard text.hasPrefix(baseName + ":") else { throw .modelNotFound(text) }
        var adapter = String(text.dropFirst(baseName.count + 1))
        if let at = adapter.lastIndex(of: "@") {
            guard adapter[adapter.index(after: at)...] == "1" else { throw .modelNotFound(text) }
            adapter = String(adapter[..<at])
        }
        guard !adapter.isEmpty else { throw .modelNotFound(text) }
        return ModelName(adapter: adapter)
    }

    /// The name responses report: what served the request, without a version suffix.
    func id(baseName: String) -> String {
        adapter.map { "\(baseName):\($0)" } ?? baseName
    }
}

/// Finds what serves a `model` field: the bare base, or the base with a stored adapter.
struct ModelResolver: Sendable {
    let baseName: String
    let adapters: AdapterStore

    func resolve(_ model: String) throws(OpenAIError) -> (id: String, adapter: LoRAAdapter?) {
        let name = try ModelName.parse(model, baseName: baseName)
        let id = name.id(baseName: baseName)
        guard let adapter = name.adapter else { return (id, nil) }
        return (id, try adapters.adapter(named: adapter, model: model))
    }
}
