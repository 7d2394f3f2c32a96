import Foundation

/// A failure while evaluating; the evaluator adds the location of the statement it was running.
struct TemplateEvaluationError: Error {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}

extension TemplateBinaryOperator {
    /// Python semantics: ints stay ints (with overflow reported, not wrapped), `/` always gives a
    /// float, `//` and `%` round toward negative infinity, `+` joins strings and lists, `~` joins
    /// anything as strings. Strings and lists a template builds stay under `maxStringLength`.
    func apply(_ lhs: TemplateValue, _ rhs: TemplateValue) throws(TemplateEvaluationError) -> TemplateValue {
        if self == .concat { return try checkedString(lhs.stringValue + rhs.stringValue) }
        if case .undefined = lhs { throw undefinedOperand() }
        if case .undefined = rhs { throw undefinedOperand() }
        switch (self, lhs, rhs) {
        case (.add, .string(let a), .string(let b)): return try checkedString(a + b)
        case (.add, .array(let a), .array(let b)): return try checkedArray(a + b)
        case (.multiply, .string(let s), _) where rhs.repetitions != nil, (.multiply, _, .string(let s)) where lhs.repetitions != nil:
            let n = rhs.repetitions ?? lhs.repetitions!
            return try checkedString(String(repeating: s, count: try repeatCount(n, s.utf8.count)))
        case (.multiply, .array(let a), _) where rhs.repetitions != nil, (.multiply, _, .array(let a)) where lhs.repetitions != nil:
            let n = rhs.repetitions ?? lhs.repetitions!
            return try checkedArray(Array([[TemplateValue]](repeating: a, count: try repeatCount(n, a.count)).joined()))
        default:
            guard let a = lhs.numeric, let b = rhs.numeric else {
                throw TemplateEvaluationError("unsupported operand types for \(rawValue): '\(lhs.typeName)' and '\(rhs.typeName)'")
            }
            return try arithmetic(a, b)
        }
    }

    private func arithmetic(_ a: TemplateNumber, _ b: TemplateNumber) throws(TemplateEvaluationError) -> TemplateValue {
        if case .int(let x) = a, case .int(let y) = b, self != .divide {
            return try integerArithmetic(x, y)
        }
        let x = a.double
        let y = b.double
        switch self {
        case .add: return .double(x + y)
        case .subtract: return .double(x - y)
        case .multiply: return .double(x * y)
        case .power: return .double(pow(x, y))
        case .divide, .floorDivide, .modulo:
            guard y != 0 else { throw TemplateEvaluationError("division by zero") }
            if self == .divide { return .double(x / y) }
            if self == .floorDivide { return .double((x / y).rounded(.down)) }
            let remainder = fmod(x, y)
            return .double(remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder)
        case .concat: preconditionFailure("'~' is handled before arithmetic")
        }
    }

    private func integerArithmetic(_ x: Int, _ y: Int) throws(TemplateEvaluationError) -> TemplateValue {
        let result: (partialValue: Int, overflow: Bool)
        switch self {
        case .add: result = x.addingReportingOverflow(y)
        case .subtract: result = x.subtractingReportingOverflow(y)
        case .multiply: result = x.multipliedReportingOverflow(by: y)
        case .floorDivide, .modulo:
            guard y != 0 else { throw TemplateEvaluationError("integer division or modulo by zero") }
            guard !(x == .min && y == -1) else { throw TemplateEvaluationError("integer overflow") }
            var quotient = x / y
            var remainder = x % y
            if remainder != 0 && (remainder < 0) != (y < 0) {
                quotient -= 1
                remainder += y
            }
            return .int(self == .floorDivide ? quotient : remainder)
        case .power:
            guard y >= 0 else { return .double(pow(Double(x), Double(y))) }
            var value = 1
            for _ in 0..<min(y, 64) {
                let step = value.multipliedReportingOverflow(by: x)
                if step.overflow { throw TemplateEvaluationError("integer overflow") }
                value = step.partialValue
            }
            // Past 64 steps only 0, 1 and -1 stay in range, and those have settled.
            return .int(y > 64 && x == -1 ? (y % 2 == 0 ? 1 : -1) : value)
        case .divide, .concat: preconditionFailure("not an integer operation")
        }
        if result.overflow { throw TemplateEvaluationError("integer overflow") }
        return .int(result.partialValue)
    }

    private func repeatCount(_ n: Int, _ unitSize: Int) throws(TemplateEvaluationError) -> Int {
        let count = max(n, 0)
        guard unitSize == 0 || count <= TemplateLimits.maxStringLength / unitSize else {
            throw TemplateEvaluationError("result of '*' is too large")
        }
        return count
    }

    private func undefinedOperand() -> TemplateEvaluationError {
        TemplateEvaluationError("undefined value used with '\(rawValue)'")
    }
}

func checkedString(_ s: String) throws(TemplateEvaluationError) -> TemplateValue {
    guard s.utf8.count <= TemplateLimits.maxStringLength else {
        throw TemplateEvaluationError("string longer than \(TemplateLimits.maxStringLength) bytes")
    }
    return .string(s)
}

private func checkedArray(_ items: [TemplateValue]) throws(TemplateEvaluationError) -> TemplateValue {
    guard items.count <= TemplateLimits.maxStringLength else { throw TemplateEvaluationError("list is too long") }
    return .array(items)
}

extension TemplateCompareOperator {
    func apply(_ lhs: TemplateValue, _ rhs: TemplateValue) throws(TemplateEvaluationError) -> Bool {
        switch self {
        case .equal: return lhs == rhs
        case .notEqual: return lhs != rhs
        case .contains: return try rhs.contains(lhs)
        case .notContains: return try !rhs.contains(lhs)
        case .less, .lessEqual, .greater, .greaterEqual:
            let order = try lhs.compare(to: rhs, rawValue)
            switch self {
            case .less: return order < 0
            case .lessEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }
}

extension TemplateValue {
    /// How many copies `"ab" * value` makes: ints, and bools as 0 or 1, as in Python.
    fileprivate var repetitions: Int? {
        if case .int(let n)? = numeric { return n }
        return nil
    }

    /// Python ordering: numbers with numbers, strings by code point, lists element by element.
    func compare(to other: TemplateValue, _ op: String) throws(TemplateEvaluationError) -> Int {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : a == b ? 0 : 1
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where x != y { return try x.compare(to: y, op) }
            return a.count < b.count ? -1 : a.count == b.count ? 0 : 1
        default:
            guard let a = numeric, let b = other.numeric else {
                throw TemplateEvaluationError("'\(op)' not supported between '\(typeName)' and '\(other.typeName)'")
            }
            if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : x == y ? 0 : 1 }
            return a.double < b.double ? -1 : a.double == b.double ? 0 : 1
        }
    }

    /// Python's `needle in self`.
    func contains(_ needle: TemplateValue) throws(TemplateEvaluationError) -> Bool {
        switch self {
        case .string(let haystack):
            guard case .string(let s) = needle else {
                throw TemplateEvaluationError("'in <string>' requires a string, not '\(needle.typeName)'")
            }
            return s.isEmpty || haystack.contains(s)
        case .array(let items): return items.contains(needle)
        case .dict(let dict):
            guard case .string(let key) = needle else { return false }
            return dict[key] != nil
        case .undefined: return false
        default: throw TemplateEvaluationError("argument of type '\(typeName)' is not iterable")
        }
    }

    /// `value.name`. Anything missing is undefined, including attributes of undefined values, where
    /// Jinja's default `Undefined` would raise (this is its `ChainableUndefined`).
    func attribute(_ name: String) -> TemplateValue {
        switch self {
        case .dict(let dict): dict[name] ?? .undefined
        case .namespace(let namespace): namespace[name] ?? .undefined
        default: .undefined
        }
    }

    /// `value[key]`, with Python's negative indices; a failed lookup is undefined, as in Jinja.
    func item(_ key: TemplateValue) -> TemplateValue {
        switch (self, key) {
        case (.dict, .string(let name)), (.namespace, .string(let name)):
            return attribute(name)
        case (.array(let items), _):
            guard case .int(let i)? = key.numeric, let index = Self.resolve(i, count: items.count) else { return .undefined }
            return items[index]
        case (.string(let s), _):
            let scalars = Array(s.unicodeScalars)
            guard case .int(let i)? = key.numeric, let index = Self.resolve(i, count: scalars.count) else { return .undefined }
            return .string(String(scalars[index]))
        default:
            return .undefined
        }
    }

    private static func resolve(_ index: Int, count: Int) -> Int? {
        let resolved = index < 0 ? index + count : index
        return (0..<count).contains(resolved) ? resolved : nil
    }

    /// `value[start:stop:step]` with Python's clamping rules; anything unsliceable is undefined.
    func slice(start: Int?, stop: Int?, step: Int?) throws(TemplateEvaluationError) -> TemplateValue {
        let step = step ?? 1
        guard step != 0 else { throw TemplateEvaluationError("slice step cannot be zero") }
        func indices(_ count: Int) -> [Int] {
            func clamp(_ bound: Int?, _ fallback: Int) -> Int {
                guard let bound else { return fallback }
                let value = bound < 0 ? bound + count : bound
                return step > 0 ? min(max(value, 0), count) : min(max(value, -1), count - 1)
            }
            let from = clamp(start, step > 0 ? 0 : count - 1)
            let to = clamp(stop, step > 0 ? count : -1)
            return Array(stride(from: from, to: to, by: step))
        }
        switch self {
        case .array(let items): return .array(indices(items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var view = String.UnicodeScalarView()
            view.append(contentsOf: indices(scalars.count).map { scalars[$0] })
            return .string(String(view))
        default: return .undefined
        }
    }

    /// What `for x in value` walks: list items, dict keys, a string's characters; undefined is empty.
    func iterationItems() throws(TemplateEvaluationError) -> [TemplateValue] {
        switch self {
        case .array(let items): return items
        case .dict(let dict): return dict.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateEvaluationError("'\(typeName)' object is not iterable")
        }
    }
}
