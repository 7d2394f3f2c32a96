import Foundation

/// The global functions Hugging Face and Jinja give chat templates.
enum TemplateGlobals {
    /// Returns nil when `name` is not a global function.
    static func call(_ name: String, _ args: TemplateArguments, now: Date) throws -> TemplateValue? {
        switch name {
        case "raise_exception":
            try args.check(name, accepts: ["message"])
            throw ChatTemplateError.raised(message: args.value(0, "message")?.stringValue ?? "")
        case "range":
            return try range(args)
        case "namespace", "dict":
            var attributes = TemplateDict()
            if let first = args.positional.first {
                guard case .dict(let initial) = first, args.positional.count == 1 else {
                    throw TemplateEvaluationError("\(name)() takes one mapping and keyword arguments")
                }
                attributes = initial
            }
            for (key, value) in args.keyword { attributes[key] = value }
            return name == "dict" ? .dict(attributes) : .namespace(TemplateNamespace(attributes))
        case "strftime_now":
            try args.check(name, accepts: ["format"])
            guard let format = try args.string(0, "format", in: name) else {
                throw TemplateEvaluationError("strftime_now() needs a format string")
            }
            return .string(strftime(format, date: now))
        default:
            return nil
        }
    }

    /// Python's `datetime.strftime` for the directives chat templates use (Llama 3.x prints today's
    /// date with "%d %b %Y"). Names are English, as in Python's default C locale.
    private static func strftime(_ format: String, date: Date) -> String {
        // Local time, as Python's datetime.now() gives.
        let calendar = Calendar(identifier: .gregorian)
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                      "October", "November", "December"]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        let (year, month, day) = (c.year!, c.month!, c.day!)
        let (hour, minute, second, weekday) = (c.hour!, c.minute!, c.second!, c.weekday!)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var out = ""
        var chars = format.makeIterator()
        while let ch = chars.next() {
            guard ch == "%", let directive = chars.next() else {
                out.append(ch)
                continue
            }
            switch directive {
            case "Y": out += String(year)
            case "y": out += two(year % 100)
            case "m": out += two(month)
            case "d": out += two(day)
            case "B": out += months[month - 1]
            case "b": out += String(months[month - 1].prefix(3))
            case "A": out += days[weekday - 1]
            case "a": out += String(days[weekday - 1].prefix(3))
            case "H": out += two(hour)
            case "I": out += two(hour % 12 == 0 ? 12 : hour % 12)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "M": out += two(minute)
            case "S": out += two(second)
            case "j":
                let ordinal = calendar.ordinality(of: .day, in: .year, for: date) ?? 0
                out += String(repeating: "0", count: max(0, 3 - String(ordinal).count)) + String(ordinal)
            case "%": out += "%"
            default: out += "%" + String(directive)
            }
        }
        return out
    }

    /// Python's `range`, refusing more than `maxRangeLength` items.
    private static func range(_ args: TemplateArguments) throws(TemplateEvaluationError) -> TemplateValue {
        try args.check("range", accepts: ["start", "stop", "step"])
        var bounds: [Int] = []
        for (i, value) in args.positional.enumerated() {
            guard case .int(let bound)? = value.numeric else {
                throw TemplateEvaluationError("range() argument \(i + 1) must be an integer, not '\(value.typeName)'")
            }
            bounds.append(bound)
        }
        let (start, stop, step): (Int, Int, Int) = switch bounds.count {
        case 1: (0, bounds[0], 1)
        case 2: (bounds[0], bounds[1], 1)
        case 3: (bounds[0], bounds[1], bounds[2])
        default: throw TemplateEvaluationError("range() takes 1 to 3 integer arguments")
        }
        guard step != 0 else { throw TemplateEvaluationError("range() step must not be zero") }
        let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
        let count = max(0, (span / Double(abs(step))).rounded(.up))
        guard count <= Double(TemplateLimits.maxRangeLength) else {
            throw TemplateEvaluationError("range() of \(Int(count)) items exceeds the limit of \(TemplateLimits.maxRangeLength)")
        }
        return .array(stride(from: start, to: stop, by: step).map { .int($0) })
    }
}

/// Methods templates call on values: Python's `str` and `dict` methods.
enum TemplateMethods {
    static func call(_ name: String, on value: TemplateValue, _ args: TemplateArguments) throws(TemplateEvaluationError) -> TemplateValue {
        switch value {
        case .string(let s): return try stringMethod(name, s, args)
        case .dict(let dict): return try dictMethod(name, dict, args)
        case .undefined: throw TemplateEvaluationError("cannot call '\(name)()' on an undefined value")
        default: throw TemplateEvaluationError("'\(value.typeName)' object has no method '\(name)'")
        }
    }

    private static func stringMethod(_ name: String, _ s: String, _ args: TemplateArguments) throws(TemplateEvaluationError) -> TemplateValue {
        switch name {
        case "strip", "lstrip", "rstrip":
            try args.check(name, accepts: ["chars"])
            return .string(TemplateStrings.strip(s, try args.string(0, "chars", in: name),
                                                 leading: name != "rstrip", trailing: name != "lstrip"))
        case "startswith", "endswith":
            try args.check(name, accepts: ["prefix"])
            let candidates: [TemplateValue] = switch args.value(0, "prefix") {
            case .array(let items)?: items
            case let single?: [single]
            case nil: []
            }
            for candidate in candidates {
                guard case .string(let affix) = candidate else {
                    throw TemplateEvaluationError("\(name)() takes a string or a list of strings, not '\(candidate.typeName)'")
                }
                let found = name == "startswith" ? s.unicodeScalars.starts(with: affix.unicodeScalars)
                    : s.unicodeScalars.reversed().starts(with: affix.unicodeScalars.reversed())
                if found { return .bool(true) }
            }
            return .bool(false)
        case "split":
            try args.check(name, accepts: ["sep", "maxsplit"])
            let parts = try TemplateStrings.split(s, try args.string(0, "sep", in: name),
                                                  maxSplit: try args.int(1, "maxsplit", in: name) ?? -1)
            return .array(parts.map { .string($0) })
        case "upper", "lower", "title", "capitalize":
            try args.check(name, accepts: [])
            switch name {
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(TemplateStrings.pythonTitle(s))
            default: return .string(TemplateStrings.capitalize(s))
            }
        case "replace":
            try args.check(name, accepts: ["old", "new", "count"])
            guard let old = try args.string(0, "old", in: name), let new = try args.string(1, "new", in: name) else {
                throw TemplateEvaluationError("replace() needs 'old' and 'new' strings")
            }
            return try checkedString(TemplateStrings.replace(s, old, new, count: try args.int(2, "count", in: name)))
        case "join":
            try args.check(name, accepts: ["iterable"])
            let items = try (args.value(0, "iterable") ?? .undefined).iterationItems()
            return try checkedString(items.map(\.stringValue).joined(separator: s))
        default:
            throw TemplateEvaluationError("'str' object has no method '\(name)'")
        }
    }

    private static func dictMethod(_ name: String, _ dict: TemplateDict, _ args: TemplateArguments) throws(TemplateEvaluationError) -> TemplateValue {
        switch name {
        case "items", "keys", "values":
            try args.check(name, accepts: [])
            return .array(dict.entries.map { entry in
                name == "items" ? .array([.string(entry.key), entry.value]) : name == "keys" ? .string(entry.key) : entry.value
            })
        case "get":
            try args.check(name, accepts: ["key", "default"])
            guard case .string(let key)? = args.value(0, "key") else { return args.value(1, "default") ?? .none }
            return dict[key] ?? args.value(1, "default") ?? .none
        default:
            throw TemplateEvaluationError("'dict' object has no method '\(name)'")
        }
    }
}

/// Python's string operations, on Unicode scalars as Python indexes strings.
enum TemplateStrings {
    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        let remove = { (scalar: Unicode.Scalar) in set?.contains(scalar) ?? scalar.properties.isWhitespace }
        var scalars = Substring(s).unicodeScalars[...]
        if leading { scalars = scalars.drop(while: remove) }
        if trailing { while let last = scalars.last, remove(last) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    static func split(_ s: String, _ separator: String?, maxSplit: Int) throws(TemplateEvaluationError) -> [String] {
        let limit = maxSplit < 0 ? Int.max : maxSplit
        guard let separator else {
            // No separator: split on whitespace runs and drop empty pieces.
            var parts: [String] = []
            var rest = Substring(strip(s, nil, leading: true, trailing: false))
            while !rest.isEmpty {
                if parts.count == limit {
                    parts.append(strip(String(rest), nil, leading: false, trailing: true))
                    break
                }
                let end = rest.unicodeScalars.firstIndex { $0.properties.isWhitespace } ?? rest.endIndex
                parts.append(String(rest[..<end]))
                rest = Substring(strip(String(rest[end...]), nil, leading: true, trailing: false))
            }
            return parts
        }
        guard !separator.isEmpty else { throw TemplateEvaluationError("split(): empty separator") }
        var parts: [String] = []
        var rest = Substring(s)
        while parts.count < limit, let range = rest.range(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        return parts + [String(rest)]
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int?) -> String {
        guard let count, count >= 0 else { return s.replacingOccurrences(of: old, with: new) }
        var result = ""
        var rest = Substring(s)
        var done = 0
        while done < count, !old.isEmpty, let range = rest.range(of: old) {
            result += rest[..<range.lowerBound] + new
            rest = rest[range.upperBound...]
            done += 1
        }
        return result + rest
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst().lowercased()
    }

    /// Python's `str.title()`: a letter is uppercased when the character before it is not a letter.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in s.unicodeScalars {
            let text = String(scalar)
            out += previousCased ? text.lowercased() : text.uppercased()
            previousCased = scalar.properties.isCased
        }
        return out
    }

    /// Jinja's `title` filter: words start after whitespace, `-`, or an opening bracket.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for ch in s {
            out += atWordStart ? ch.uppercased() : ch.lowercased()
            atWordStart = ch.isWhitespace || "-({[<".contains(ch)
        }
        return out
    }
}
