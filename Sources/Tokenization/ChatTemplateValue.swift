import Foundation

/// A value as a chat template sees it: the Python types Jinja works with, plus Jinja's `Undefined`.
/// Callers build these for `extraContext` (tools, documents, flags); literals work:
/// `["type": "function", "function": ["name": "get_weather"]]`.
public enum TemplateValue: Sendable {
    /// A missing variable, key or attribute: renders as "", is falsy and iterates as empty.
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    /// Keys keep insertion order, because `tojson` must reproduce Python's `json.dumps` byte for byte.
    case dict(TemplateDict)
    /// `namespace(...)`: the one mutable object, shared by reference so `set ns.x` outlives loop scopes.
    case namespace(TemplateNamespace)
}

/// A string-keyed dictionary that remembers insertion order, like a Python `dict`.
public struct TemplateDict: Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    private var storage: [String: TemplateValue] = [:]

    public init() {}

    /// A repeated key keeps its first position and its last value, as in Python.
    public init(_ pairs: [(String, TemplateValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self.init(elements)
    }

    /// Builds a dict in one pass, for hot paths that know their keys are distinct.
    init(uniqueKeys keys: [String], values: [TemplateValue]) {
        self.keys = keys
        storage = Dictionary(uniqueKeysWithValues: zip(keys, values))
    }

    public var count: Int { keys.count }

    public var entries: [(key: String, value: TemplateValue)] {
        keys.map { ($0, storage[$0]!) }
    }

    public subscript(key: String) -> TemplateValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
}

/// The object `namespace(...)` returns. Templates mutate it from inside loops, where `set` on a
/// plain variable would not escape the loop body.
public final class TemplateNamespace: @unchecked Sendable {
    // A render mutates a namespace from one thread; the lock only keeps a namespace shared
    // between renders through `extraContext` memory-safe.
    private let lock = NSLock()
    private var storage: TemplateDict

    public init(_ attributes: TemplateDict = TemplateDict()) {
        storage = attributes
    }

    public subscript(name: String) -> TemplateValue? {
        get { lock.lock(); defer { lock.unlock() }; return storage[name] }
        set { lock.lock(); defer { lock.unlock() }; storage[name] = newValue }
    }

    public var attributes: TemplateDict {
        lock.lock(); defer { lock.unlock() }
        return storage
    }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self = .dict(TemplateDict(elements)) }
}

extension TemplateDict: Equatable {
    /// Python compares dicts by content, not by key order.
    public static func == (lhs: TemplateDict, rhs: TemplateDict) -> Bool {
        lhs.count == rhs.count && lhs.keys.allSatisfy { lhs.storage[$0] == rhs.storage[$0] }
    }
}

extension TemplateValue: Equatable {
    /// Python's `==`: numbers compare by value across int, float and bool; namespaces by identity.
    public static func == (lhs: TemplateValue, rhs: TemplateValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.dict(let a), .dict(let b)): return a == b
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            switch (lhs.numeric, rhs.numeric) {
            case (.int(let a)?, .int(let b)?): return a == b
            case (let a?, let b?): return a.double == b.double
            default: return false
            }
        }
    }
}

extension TemplateValue: CustomStringConvertible {
    /// Python's `repr`, which is what a test failure or an error message should show.
    public var description: String { repr }
}

/// A number as Python arithmetic sees it: `bool` counts as an int.
enum TemplateNumber {
    case int(Int)
    case double(Double)

    var double: Double {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        }
    }
}

extension TemplateValue {
    var numeric: TemplateNumber? {
        switch self {
        case .int(let i): .int(i)
        case .bool(let b): .int(b ? 1 : 0)
        case .double(let d): .double(d)
        default: nil
        }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .dict(let d): d.count > 0
        case .namespace: true
        }
    }

    /// Python's type name, for error messages that read like the ones Jinja users know.
    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .array: "list"
        case .dict: "dict"
        case .namespace: "Namespace"
        }
    }

    /// Python's `str()`, which is what `{{ value }}` prints.
    var stringValue: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: repr
        }
    }

    var repr: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        // Swift's shortest round-trip formatting matches Python's float repr, including `1e+16`.
        case .double(let d): d.description
        case .string(let s): Self.pythonQuoted(s)
        case .array(let items): "[" + items.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let dict): "{" + dict.entries.map { Self.pythonQuoted($0.key) + ": " + $0.value.repr }
            .joined(separator: ", ") + "}"
        case .namespace(let ns): "<Namespace " + TemplateValue.dict(ns.attributes).repr + ">"
        }
    }

    private static func pythonQuoted(_ s: String) -> String {
        let quote: Unicode.Scalar = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case quote: out += "\\" + String(quote)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(format: "%02x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }
}
