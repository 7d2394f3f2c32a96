// Which projections a PEFT config adapts, and with which rank and alpha, decided the way
// PEFT 0.21 decides it for each module of the Hugging Face model, named like
// "model.layers.3.self_attn.q_proj" (PEFTKey.moduleName):
// - exclude_modules: a string is a regular expression the whole name must match; a list
//   holds names the module's name equals or ends with after a dot.
// - target_modules: "all-linear" is every projection; any other string is a regular
//   expression the whole name must match (layers_to_transform may not be combined with
//   it); a list holds names as above ("q_proj", "self_attn.q_proj", a full name), and
//   then layers_to_transform restricts the layers.
// - rank_pattern and alpha_pattern: a key applies to a module when the whole name
//   matches "(.*\.)?(key)" as a regular expression; otherwise r and lora_alpha do.
// PEFT takes the first matching pattern key in file order. The JSON reader keeps no key
// order, so keys that match one module with different values are refused instead.
struct PEFTModuleRules {
    enum Rule: Equatable {
        case adapted(rank: Int, alpha: Float)
        /// Why the config leaves the projection alone, for the error about a tensor there.
        case untouched(reason: String)
    }

    /// nLayers × 7, indexed by layer * 7 + target.index.
    private let rules: [Rule]

    init(_ json: [String: JSONValue], rank: Int, alpha: Float, nLayers: Int,
         invalid: (String) -> AdapterError) throws(AdapterError) {
        let targets = try ModuleSelector(targets: json["target_modules"], invalid: invalid)
        let excluded = try ModuleSelector(excluded: json["exclude_modules"], invalid: invalid)
        let layers = try parseLayers(json["layers_to_transform"], nLayers: nLayers, invalid: invalid)
        if layers != nil, case .pattern = targets {
            throw invalid("layers_to_transform cannot be combined with a regular expression in target_modules (PEFT refuses it too)")
        }
        try checkLayersPattern(json["layers_pattern"])
        let ranks = try PatternTable(json["rank_pattern"], key: "rank_pattern", invalid: invalid) { value throws(AdapterError) in
            guard let r = value.int else { throw invalid("rank_pattern values must be integers") }
            guard r > 0 else { throw .invalidRank(r) }
            return r
        }
        let alphas = try PatternTable(json["alpha_pattern"], key: "alpha_pattern", invalid: invalid) { value throws(AdapterError) in
            guard case .number(let a) = value, a.isFinite else { throw invalid("alpha_pattern values must be numbers") }
            return Float(a)
        }

        let names = (0..<nLayers).flatMap { layer in LoRATarget.allCases.map { PEFTKey.moduleName(layer: layer, target: $0) } }
        if case .names(let entries) = targets {
            for entry in entries where !names.contains(where: { ModuleSelector.name($0, isNamedBy: entry) }) {
                throw .unknownTargetModule(entry)
            }
        }
        var rules: [Rule] = []
        rules.reserveCapacity(names.count)
        for (i, name) in names.enumerated() {
            let (layer, target) = (i / 7, LoRATarget.allCases[i % 7])
            if excluded?.selects(name) == true {
                rules.append(.untouched(reason: "\(name) is in exclude_modules"))
            } else if !targets.selects(name) {
                rules.append(.untouched(reason: targets.isPattern ? "\(name) does not match target_modules" : "\(target.rawValue) is not in target_modules"))
            } else if let layers, !layers.contains(layer) {
                rules.append(.untouched(reason: "layer \(layer) is not in layers_to_transform"))
            } else {
                rules.append(.adapted(rank: try ranks.value(for: name) ?? rank, alpha: try alphas.value(for: name) ?? alpha))
            }
        }
        guard rules.contains(where: { if case .adapted = $0 { true } else { false } }) else {
            throw invalid("target_modules selects none of the model's projections (after exclude_modules and layers_to_transform)")
        }
        self.rules = rules
    }

    func rule(layer: Int, target: LoRATarget) -> Rule {
        rules[layer * 7 + target.index]
    }
}

// target_modules or exclude_modules.
private enum ModuleSelector {
    case all
    case names([String])
    case pattern(Regex<AnyRegexOutput>)

    init(targets value: JSONValue?, invalid: (String) -> AdapterError) throws(AdapterError) {
        switch value {
        case .string(let text)? where text.lowercased() == "all-linear":
            // PEFT: every Linear but the output head, which in a llama model is the seven projections.
            self = .all
        case .string(let text)?:
            self = .pattern(try compile(text, key: "target_modules", invalid: invalid))
        case .array(let items)?:
            let names = try strings(items, key: "target_modules", invalid: invalid)
            guard !names.isEmpty else { throw invalid("target_modules is empty") }
            self = .names(names)
        default:
            throw invalid("target_modules must be a list of module names, a regular expression or \"all-linear\"")
        }
    }

    /// nil when nothing is excluded.
    init?(excluded value: JSONValue?, invalid: (String) -> AdapterError) throws(AdapterError) {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: self = .pattern(try compile(text, key: "exclude_modules", invalid: invalid))
        case .array(let items)?: self = .names(try strings(items, key: "exclude_modules", invalid: invalid))
        default: throw invalid("exclude_modules must be a list of module names or a regular expression")
        }
    }

    var isPattern: Bool {
        if case .pattern = self { return true }
        return false
    }

    func selects(_ name: String) -> Bool {
        switch self {
        case .all: return true
        case .names(let entries): return entries.contains { Self.name(name, isNamedBy: $0) }
        case .pattern(let regex): return (try? regex.wholeMatch(in: name)) != nil
        }
    }

    /// PEFT's rule for a listed name: the module's own name, or its last dotted parts.
    static func name(_ name: String, isNamedBy entry: String) -> Bool {
        name == entry || name.hasSuffix("." + entry)
    }
}

// rank_pattern or alpha_pattern: regular expressions matched against the end of a
// module's name, each with its value.
private struct PatternTable<Value: Equatable> {
    private let key: String
    private let patterns: [(source: String, regex: Regex<AnyRegexOutput>, value: Value)]

    init(_ json: JSONValue?, key: String, invalid: (String) -> AdapterError,
         value: (JSONValue) throws(AdapterError) -> Value) throws(AdapterError) {
        self.key = key
        switch json {
        case nil, .null?:
            patterns = []
        case .object(let fields)?:
            var patterns: [(source: String, regex: Regex<AnyRegexOutput>, value: Value)] = []
            for (source, item) in fields.sorted(by: { $0.key < $1.key }) {
                patterns.append((source, try compile("(.*\\.)?(\(source))", key: key, invalid: invalid), try value(item)))
            }
            self.patterns = patterns
        default:
            throw invalid("\(key) must be an object of module-name patterns")
        }
    }

    /// The value of the keys matching `name`, nil when none does.
    func value(for name: String) throws(AdapterError) -> Value? {
        let matching = patterns.filter { (try? $0.regex.wholeMatch(in: name)) != nil }
        guard let first = matching.first else { return nil }
        if let other = matching.first(where: { $0.value != first.value }) {
            throw .unsupportedFeature(key: key, value: "{\"\(first.source)\": \(first.value), \"\(other.source)\": \(other.value)}",
                                      reason: "both keys match \(name) with different values; PEFT would take the one first "
                                          + "in the file, an order this reader does not keep: make the keys match disjoint modules")
        }
        return first.value
    }
}

private func compile(_ pattern: String, key: String, invalid: (String) -> AdapterError) throws(AdapterError) -> Regex<AnyRegexOutput> {
    do {
        return try Regex(pattern)
    } catch {
        throw invalid("\(key) '\(pattern)' is not a regular expression this reader understands: \(error)")
    }
}

private func strings(_ items: [JSONValue], key: String, invalid: (String) -> AdapterError) throws(AdapterError) -> [String] {
    var names: [String] = []
    for item in items {
        guard case .string(let name) = item else { throw invalid("\(key) must hold strings") }
        names.append(name)
    }
    return names
}

private func parseLayers(_ value: JSONValue?, nLayers: Int, invalid: (String) -> AdapterError) throws(AdapterError) -> Set<Int>? {
    let items: [JSONValue]
    switch value {
    case nil, .null?: return nil
    case .number?: items = [value!]
    case .array(let list)?: items = list
    default: throw invalid("layers_to_transform must be an integer or a list of integers")
    }
    // PEFT treats an empty list as no restriction.
    guard !items.isEmpty else { return nil }
    var layers = Set<Int>()
    for item in items {
        guard let layer = item.int else { throw invalid("layers_to_transform must be an integer or a list of integers") }
        guard layer >= 0 && layer < nLayers else { throw .layerOutOfRange(name: "layers_to_transform", layer: layer, nLayers: nLayers) }
        layers.insert(layer)
    }
    return layers
}

// layers_pattern names the module list that layers_to_transform indexes; in a llama
// model that is "layers", which is also what an empty pattern finds.
private func checkLayersPattern(_ value: JSONValue?) throws(AdapterError) {
    switch value {
    case nil, .null?, .string("")?, .string("layers")?: return
    case .array(let items)? where items.allSatisfy({ $0 == .string("layers") }): return
    default:
        throw .unsupportedFeature(key: "layers_pattern", value: value!.text,
                                  reason: "a llama model's decoder layers are the module list \"layers\"")
    }
}
