import Foundation

/// Variables visible at one point of a render. Jinja gives each loop iteration (and each macro
/// call) its own scope, so `set` inside a loop is gone after it; `if` blocks share their parent's.
private final class TemplateScope {
    let parent: TemplateScope?
    var variables: [String: TemplateValue] = [:]
    var macros: [String: TemplateMacro] = [:]

    init(parent: TemplateScope?) {
        self.parent = parent
    }

    func lookup(_ name: String) -> TemplateValue? {
        variables[name] ?? parent?.lookup(name)
    }

    /// The nearest definition of `name`, which may be a variable shadowing a macro or the reverse.
    func callable(_ name: String) -> (macro: TemplateMacro?, value: TemplateValue?) {
        if let macro = macros[name] { return (macro, nil) }
        if let value = variables[name] { return (nil, value) }
        return parent?.callable(name) ?? (nil, nil)
    }
}

/// Runs a parsed template for one render. A new evaluator per render owns the scopes and the
/// budgets, so concurrent renders of one `ChatTemplate` share nothing mutable.
final class TemplateEvaluator {
    private enum Flow {
        case normal, breakLoop, continueLoop
    }

    private let root: TemplateScope
    private var scope: TemplateScope
    private let now: Date
    private var iterations = 0
    private var depth = 0

    init(context: [String: TemplateValue], now: Date) {
        root = TemplateScope(parent: nil)
        root.variables = context
        scope = root
        self.now = now
    }

    func render(_ nodes: [TemplateNode]) throws -> String {
        var out = ""
        _ = try execute(nodes, into: &out)
        return out
    }

    // MARK: Statements

    private func execute(_ nodes: [TemplateNode], into out: inout String) throws -> Flow {
        for node in nodes {
            let flow = try execute(node, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ node: TemplateNode, into out: inout String) throws -> Flow {
        do {
            try enter()
            defer { depth -= 1 }
            switch node {
            case .text(let text):
                try append(text, to: &out)
            case .output(let expr, _):
                try append(try evaluate(expr).stringValue, to: &out)
            case .conditional(let branches, let otherwise, _):
                for branch in branches where try evaluate(branch.condition).isTruthy {
                    return try execute(branch.body, into: &out)
                }
                return try execute(otherwise, into: &out)
            case .loop(let loop):
                try run(loop, into: &out)
            case .assign(let target, let expr, _):
                try assign(try evaluate(expr), to: target)
            case .capture(let name, let body, _):
                var captured = ""
                _ = try execute(body, into: &captured)
                scope.variables[name] = .string(captured)
            case .macro(let macro, _):
                scope.macros[macro.name] = macro
            case .loopControl(let isBreak, _):
                return isBreak ? .breakLoop : .continueLoop
            }
            return .normal
        } catch let error as TemplateEvaluationError {
            guard let at = node.location else { throw ChatTemplateError.runtime(message: error.message) }
            throw ChatTemplateError.runtime(message: "\(error.message) (line \(at.line), column \(at.column))")
        }
    }

    private func run(_ loop: TemplateLoop, into out: inout String) throws {
        var items = try evaluate(loop.iterable).iterationItems()
        if let filter = loop.filter {
            items = try items.filter { item in
                try scoped { () throws in
                    try bind(loop.targets, to: item)
                    return try evaluate(filter).isTruthy
                }
            }
        }
        if items.isEmpty {
            _ = try scoped { () throws in try execute(loop.otherwise, into: &out) }
            return
        }
        // One scope, emptied per iteration: nothing can hold on to it (macros close over the top
        // level), so this is a fresh scope per iteration as Jinja has, without the allocation.
        try scoped { () throws in
            for (index, item) in items.enumerated() {
                iterations += 1
                guard iterations <= TemplateLimits.maxLoopIterations else {
                    throw TemplateEvaluationError("loops ran more than \(TemplateLimits.maxLoopIterations) iterations")
                }
                scope.variables.removeAll(keepingCapacity: true)
                scope.macros.removeAll()
                try bind(loop.targets, to: item)
                if loop.usesLoopVariable { scope.variables["loop"] = Self.loopVariable(index: index, items: items) }
                if try execute(loop.body, into: &out) == .breakLoop { break }
            }
        }
    }

    private static let loopKeys = ["index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0"]

    private static func loopVariable(index: Int, items: [TemplateValue]) -> TemplateValue {
        let count = items.count
        var loop = TemplateDict(uniqueKeys: loopKeys, values: [
            .int(index + 1), .int(index), .int(count - index), .int(count - index - 1),
            .bool(index == 0), .bool(index == count - 1), .int(count), .int(1), .int(0),
        ])
        if index > 0 { loop["previtem"] = items[index - 1] }
        if index + 1 < count { loop["nextitem"] = items[index + 1] }
        return .dict(loop)
    }

    private func assign(_ value: TemplateValue, to target: TemplateAssignTarget) throws(TemplateEvaluationError) {
        switch target {
        case .names(let names):
            try bind(names, to: value)
        case .attribute(let object, let name):
            guard case .namespace(let namespace)? = scope.lookup(object) else {
                throw TemplateEvaluationError("cannot assign attribute '\(name)' on '\(object)', which is not a namespace")
            }
            namespace[name] = value
        }
    }

    /// Binds one name, or unpacks a list into several: `for key, value in d | items`.
    private func bind(_ names: [String], to value: TemplateValue) throws(TemplateEvaluationError) {
        guard names.count > 1 else { return scope.variables[names[0]] = value }
        let items = try value.iterationItems()
        guard items.count == names.count else {
            throw TemplateEvaluationError("cannot unpack \(items.count) values into \(names.count) names")
        }
        for (name, item) in zip(names, items) { scope.variables[name] = item }
    }

    private func append(_ text: String, to out: inout String) throws(TemplateEvaluationError) {
        guard out.utf8.count + text.utf8.count <= TemplateLimits.maxStringLength else {
            throw TemplateEvaluationError("output longer than \(TemplateLimits.maxStringLength) bytes")
        }
        out += text
    }

    private func scoped<T>(_ body: () throws -> T) rethrows -> T {
        let saved = scope
        scope = TemplateScope(parent: saved)
        defer { scope = saved }
        return try body()
    }

    private func enter() throws(TemplateEvaluationError) {
        guard depth < TemplateLimits.maxEvaluationDepth else {
            throw TemplateEvaluationError("template recursion is too deep")
        }
        depth += 1
    }

    // MARK: Expressions

    private func evaluate(_ expr: TemplateExpr) throws -> TemplateValue {
        try enter()
        defer { depth -= 1 }
        switch expr.kind {
        case .literal(let value):
            return value
        case .name(let name):
            return scope.lookup(name) ?? .undefined
        case .list(let items):
            return .array(try items.map(evaluate))
        case .dict(let entries):
            var dict = TemplateDict()
            for entry in entries {
                let key = try evaluate(entry.key)
                guard case .string(let name) = key else {
                    throw TemplateEvaluationError("dict keys must be strings, not '\(key.typeName)'")
                }
                dict[name] = try evaluate(entry.value)
            }
            return .dict(dict)
        case .attribute(let base, let name):
            return try evaluate(base).attribute(name)
        case .item(let base, let key):
            return try evaluate(base).item(try evaluate(key))
        case .slice(let base, let start, let stop, let step):
            let value = try evaluate(base)
            var bounds: [Int?] = []
            for bound in [start, stop, step] {
                switch try bound.map(evaluate) {
                case nil, .none?, .undefined?: bounds.append(nil)
                case let other?:
                    // Jinja turns a failed subscript into undefined.
                    guard case .int(let i)? = other.numeric else { return .undefined }
                    bounds.append(i)
                }
            }
            return try value.slice(start: bounds[0], stop: bounds[1], step: bounds[2])
        case .call(let callee, let arguments):
            return try call(callee, try evaluate(arguments))
        case .filter(let base, let name, let arguments):
            return try TemplateFilters.apply(name, to: try evaluate(base), try evaluate(arguments))
        case .test(let base, let name, let arguments, let negated):
            return .bool(try TemplateTests.apply(name, to: try evaluate(base), try evaluate(arguments).positional) != negated)
        case .negate(let operand), .plus(let operand):
            let value = try evaluate(operand)
            guard let number = value.numeric else {
                throw TemplateEvaluationError("bad operand type for unary operator: '\(value.typeName)'")
            }
            guard case .negate = expr.kind else { return number.value }
            switch number {
            case .int(let i): return try TemplateBinaryOperator.subtract.apply(.int(0), .int(i))
            case .double(let d): return .double(-d)
            }
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .binary(let op, let lhs, let rhs):
            return try op.apply(try evaluate(lhs), try evaluate(rhs))
        case .and(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? try evaluate(rhs) : left
        case .or(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? left : try evaluate(rhs)
        case .compare(let first, let rest):
            var left = try evaluate(first)
            for (op, operand) in rest {
                let right = try evaluate(operand)
                guard try op.apply(left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let value, let condition, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(value) }
            return try otherwise.map(evaluate) ?? .undefined
        }
    }

    private func evaluate(_ arguments: [TemplateArgument]) throws -> TemplateArguments {
        var result = TemplateArguments()
        for argument in arguments {
            let value = try evaluate(argument.value)
            if let name = argument.name {
                result.keyword.append((name, value))
            } else {
                result.positional.append(value)
            }
        }
        return result
    }

    private func call(_ callee: TemplateExpr, _ arguments: TemplateArguments) throws -> TemplateValue {
        switch callee.kind {
        case .attribute(let base, let name):
            return try TemplateMethods.call(name, on: try evaluate(base), arguments)
        case .name(let name):
            let (macro, value) = scope.callable(name)
            if let macro { return try call(macro, arguments) }
            if let value { throw TemplateEvaluationError("'\(value.typeName)' object '\(name)' is not callable") }
            if let result = try TemplateGlobals.call(name, arguments, now: now) { return result }
            throw TemplateEvaluationError("'\(name)' is undefined")
        default:
            throw TemplateEvaluationError("'\(try evaluate(callee).typeName)' object is not callable")
        }
    }

    /// A macro renders its body in a fresh scope over the template's top level and returns the text.
    private func call(_ macro: TemplateMacro, _ arguments: TemplateArguments) throws -> TemplateValue {
        let names = macro.parameters.map(\.name)
        try arguments.check(macro.name, accepts: names)
        let saved = scope
        scope = TemplateScope(parent: root)
        defer { scope = saved }
        for (index, parameter) in macro.parameters.enumerated() {
            scope.variables[parameter.name] = try arguments.value(index, parameter.name)
                ?? parameter.defaultValue.map(evaluate) ?? .undefined
        }
        var out = ""
        _ = try execute(macro.body, into: &out)
        return .string(out)
    }
}

private extension TemplateNumber {
    var value: TemplateValue {
        switch self {
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        }
    }
}
