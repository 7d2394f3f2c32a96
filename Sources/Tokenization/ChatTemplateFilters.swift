/// Evaluated arguments of a filter, test, method or function call.
struct TemplateArguments {
    var positional: [TemplateValue] = []
    var keyword: [(name: String, value: TemplateValue)] = []

    /// The argument at `position`, or passed as `name=`.
    func value(_ position: Int, _ name: String) -> TemplateValue? {
        position < positional.count ? positional[position] : keyword.first { $0.name == name }?.value
    }

    func keyword(_ name: String) -> TemplateValue? {
        keyword.first { $0.name == name }?.value
    }

    /// Rejects arguments a builtin does not take, so a typo fails loudly instead of being ignored.
    func check(_ function: String, accepts names: [String]) throws(TemplateEvaluationError) {
        if positional.count > names.count {
            throw TemplateEvaluationError("\(function)() takes at most \(names.count) arguments (\(positional.count) given)")
        }
        if let unknown = keyword.first(where: { !names.contains($0.name) }) {
            throw TemplateEvaluationError("\(function)() got an unexpected keyword argument '\(unknown.name)'")
        }
    }

    func string(_ position: Int, _ name: String, in function: String) throws(TemplateEvaluationError) -> String? {
        switch value(position, name) {
        case nil, .none?, .undefined?: return nil
        case .string(let s)?: return s
        case let other?: throw TemplateEvaluationError("\(function)(): '\(name)' must be a string, not '\(other.typeName)'")
        }
    }

    func int(_ position: Int, _ name: String, in function: String) throws(TemplateEvaluationError) -> Int? {
        switch value(position, name) {
        case nil, .none?, .undefined?: return nil
        case let other?:
            guard case .int(let i)? = other.numeric else {
                throw TemplateEvaluationError("\(function)(): '\(name)' must be an integer, not '\(other.typeName)'")
            }
            return i
        }
    }
}

/// Jinja's built-in filters that chat templates use, with Jinja's (or, for `tojson`, Hugging Face's)
/// argument names and results.
enum TemplateFilters {
    static func apply(_ name: String, to value: TemplateValue, _ args: TemplateArguments) throws(TemplateEvaluationError) -> TemplateValue {
        switch name {
        case "trim":
            try args.check(name, accepts: ["chars"])
            return .string(TemplateStrings.strip(value.stringValue, try args.string(0, "chars", in: name), leading: true, trailing: true))
        case "upper", "lower", "capitalize", "title":
            try args.check(name, accepts: [])
            let s = value.stringValue
            switch name {
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "capitalize": return .string(TemplateStrings.capitalize(s))
            default: return .string(TemplateStrings.jinjaTitle(s))
            }
        case "length", "count":
            try args.check(name, accepts: [])
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let items): return .int(items.count)
            case .dict(let dict): return .int(dict.count)
            case .undefined: return .int(0)
            default: throw TemplateEvaluationError("object of type '\(value.typeName)' has no len()")
            }
        case "tojson":
            try args.check(name, accepts: ["ensure_ascii", "indent", "separators", "sort_keys"])
            var separators: (item: String, key: String)?
            if case .array(let pair)? = args.value(2, "separators"), pair.count == 2,
               case .string(let item) = pair[0], case .string(let key) = pair[1] {
                separators = (item, key)
            }
            return .string(try TemplateJSON.serialize(value, indent: try args.int(1, "indent", in: name),
                                                      ensureASCII: args.value(0, "ensure_ascii")?.isTruthy ?? false,
                                                      separators: separators,
                                                      sortKeys: args.value(3, "sort_keys")?.isTruthy ?? false))
        case "default", "d":
            try args.check(name, accepts: ["default_value", "boolean"])
            let useFallback = args.value(1, "boolean")?.isTruthy == true ? !value.isTruthy : value.isUndefined
            return useFallback ? args.value(0, "default_value") ?? .string("") : value
        case "first", "last":
            try args.check(name, accepts: [])
            let items = try value.iterationItems()
            return (name == "first" ? items.first : items.last) ?? .undefined
        case "join":
            try args.check(name, accepts: ["d", "attribute"])
            var items = try value.iterationItems()
            if let attribute = args.value(1, "attribute") { items = items.map { $0.path(attribute) } }
            return try checkedString(items.map(\.stringValue).joined(separator: try args.string(0, "d", in: name) ?? ""))
        case "string", "safe":
            try args.check(name, accepts: [])
            return .string(value.stringValue)
        case "int":
            try args.check(name, accepts: ["default", "base"])
            return toInt(value, base: try args.int(1, "base", in: name) ?? 10) ?? args.value(0, "default") ?? .int(0)
        case "float":
            try args.check(name, accepts: ["default"])
            return toDouble(value) ?? args.value(0, "default") ?? .double(0)
        case "abs":
            try args.check(name, accepts: [])
            switch value.numeric {
            case .int(let i)? where i != .min: return .int(abs(i))
            case .double(let d)?: return .double(abs(d))
            default: throw TemplateEvaluationError("bad operand type for abs(): '\(value.typeName)'")
            }
        case "list":
            try args.check(name, accepts: [])
            return .array(try value.iterationItems())
        case "items":
            try args.check(name, accepts: [])
            switch value {
            case .dict(let dict): return .array(dict.entries.map { .array([.string($0.key), $0.value]) })
            case .undefined: return .array([])
            default: throw TemplateEvaluationError("can only get item pairs from a mapping, not '\(value.typeName)'")
            }
        case "replace":
            try args.check(name, accepts: ["old", "new", "count"])
            guard let old = try args.string(0, "old", in: name), let new = try args.string(1, "new", in: name) else {
                throw TemplateEvaluationError("replace() needs 'old' and 'new' strings")
            }
            return try checkedString(TemplateStrings.replace(value.stringValue, old, new, count: try args.int(2, "count", in: name)))
        case "reverse":
            try args.check(name, accepts: [])
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try value.iterationItems().reversed())
        case "indent":
            try args.check(name, accepts: ["width", "first", "blank"])
            return try checkedString(indent(value.stringValue, width: try args.int(0, "width", in: name) ?? 4,
                                            first: args.value(1, "first")?.isTruthy ?? false,
                                            blank: args.value(2, "blank")?.isTruthy ?? false))
        case "select", "reject", "selectattr", "rejectattr":
            // select(test, args…) / selectattr(attribute, test, args…); without a test, truthiness decides.
            var rest = args.positional[...]
            let attribute = name.hasSuffix("attr") ? rest.popFirst() : nil
            if name.hasSuffix("attr") && attribute == nil { throw TemplateEvaluationError("\(name)() needs an attribute name") }
            let test = rest.popFirst()
            let testArgs = Array(rest)
            var kept: [TemplateValue] = []
            for item in try value.iterationItems() {
                let subject = attribute.map(item.path) ?? item
                var passes = subject.isTruthy
                if let test {
                    guard case .string(let testName) = test else { throw TemplateEvaluationError("\(name)(): test name must be a string") }
                    passes = try TemplateTests.apply(testName, to: subject, testArgs)
                }
                if passes == name.hasPrefix("select") { kept.append(item) }
            }
            return .array(kept)
        case "map":
            let items = try value.iterationItems()
            if let attribute = args.keyword("attribute") {
                let fallback = args.keyword("default")
                return .array(items.map { item in
                    let field = item.path(attribute)
                    return field.isUndefined ? fallback ?? field : field
                })
            }
            guard let filter = args.positional.first.flatMap(\.stringValueIfString) else {
                throw TemplateEvaluationError("map() needs a filter name or attribute=")
            }
            let filterArgs = TemplateArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .array(try items.map { item throws(TemplateEvaluationError) in try apply(filter, to: item, filterArgs) })
        default:
            throw TemplateEvaluationError("unknown filter '\(name)'")
        }
    }

    private static func toInt(_ value: TemplateValue, base: Int) -> TemplateValue? {
        switch value {
        case .int: return value
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? .int(Int(d)) : nil
        case .string(let s):
            let trimmed = TemplateStrings.strip(s, nil, leading: true, trailing: true).filter { $0 != "_" }
            if let i = Int(trimmed, radix: base) { return .int(i) }
            if base == 10, let d = Double(trimmed), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
            return nil
        default: return nil
        }
    }

    private static func toDouble(_ value: TemplateValue) -> TemplateValue? {
        switch value.numeric {
        case let number?: return .double(number.double)
        case nil:
            guard case .string(let s) = value,
                  let d = Double(TemplateStrings.strip(s, nil, leading: true, trailing: true)) else { return nil }
            return .double(d)
        }
    }

    /// Jinja 3's `indent`: every line but the first (unless `first`) gets `width` spaces; blank
    /// lines stay blank unless `blank`.
    private static func indent(_ s: String, width: Int, first: Bool, blank: Bool) -> String {
        let padding = String(repeating: " ", count: max(width, 0))
        var lines = (s + "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeLast()
        var result = lines.removeFirst()
        if !lines.isEmpty {
            result += "\n" + lines.map { blank || !$0.isEmpty ? padding + $0 : $0 }.joined(separator: "\n")
        }
        return first ? padding + result : result
    }
}

/// Jinja's tests (`x is defined`, `x is divisibleby 3`), also used by `select` and `selectattr`.
enum TemplateTests {
    static func apply(_ name: String, to value: TemplateValue, _ args: [TemplateValue]) throws(TemplateEvaluationError) -> Bool {
        func argument() throws(TemplateEvaluationError) -> TemplateValue {
            guard let first = args.first else { throw TemplateEvaluationError("test '\(name)' needs an argument") }
            return first
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.numeric != nil
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        // Jinja's Undefined supports iter() and len(), so it passes both of these.
        case "iterable":
            switch value {
            case .string, .array, .dict, .undefined: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .string, .array, .dict, .undefined: return true
            default: return false
            }
        case "callable": return false
        case "odd", "even":
            guard case .int(let i)? = value.numeric else { throw TemplateEvaluationError("test '\(name)' needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i)? = value.numeric, case .int(let n)? = try argument().numeric, n != 0 else {
                throw TemplateEvaluationError("test 'divisibleby' needs non-zero integers")
            }
            return i % n == 0
        case "lower": if case .string(let s) = value { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = value { return s == s.uppercased() } else { return false }
        case "sameas":
            let other = try argument()
            if case .namespace(let a) = value, case .namespace(let b) = other { return a === b }
            return value.typeName == other.typeName && value == other
        case "in": return try argument().contains(value)
        case "eq", "equalto", "==": return value == (try argument())
        case "ne", "!=": return value != (try argument())
        case "lt", "lessthan", "<": return try value.compare(to: try argument(), "<") < 0
        case "le", "<=": return try value.compare(to: try argument(), "<=") <= 0
        case "gt", "greaterthan", ">": return try value.compare(to: try argument(), ">") > 0
        case "ge", ">=": return try value.compare(to: try argument(), ">=") >= 0
        default: throw TemplateEvaluationError("unknown test '\(name)'")
        }
    }
}

extension TemplateValue {
    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var stringValueIfString: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Follows `attribute` as Jinja's attribute getters do: "a.b" walks nested keys, an integer indexes.
    func path(_ attribute: TemplateValue) -> TemplateValue {
        guard case .string(let dotted) = attribute else { return item(attribute) }
        return dotted.split(separator: ".", omittingEmptySubsequences: false).reduce(self) { value, part in
            Int(part).map { value.item(.int($0)) } ?? value.item(.string(String(part)))
        }
    }
}
