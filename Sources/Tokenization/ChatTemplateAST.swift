/// Bounds that keep a broken or hostile template from exhausting the stack, the CPU or memory.
/// Real chat templates stay far below each of them.
enum TemplateLimits {
    /// Parser recursion: brackets, unary chains and nested blocks together.
    static let maxNesting = 32
    /// Height of one expression tree (`a + a + …` builds a deep tree without nesting), so that
    /// evaluating and freeing it never recurses deeply.
    static let maxExpressionHeight = 128
    /// Evaluator recursion, which only macros calling macros can push past the two limits above.
    static let maxEvaluationDepth = 256
    static let maxRangeLength = 100_000
    /// Iterations of all loops in one render; Jinja has no `while`, so this bounds nested loops.
    static let maxLoopIterations = 1_000_000
    /// UTF-8 bytes in any string a template builds, the output included.
    static let maxStringLength = 8 << 20
}

struct SourceLocation: Sendable, Equatable {
    let line: Int
    let column: Int
}

enum TemplateBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
    case power = "**", concat = "~"
}

enum TemplateCompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case contains = "in", notContains = "not in"
}

struct TemplateExpr: Sendable {
    indirect enum Kind: Sendable {
        case literal(TemplateValue)
        case name(String)
        case list([TemplateExpr])
        case dict([(key: TemplateExpr, value: TemplateExpr)])
        case attribute(TemplateExpr, String)
        case item(TemplateExpr, TemplateExpr)
        case slice(TemplateExpr, start: TemplateExpr?, stop: TemplateExpr?, step: TemplateExpr?)
        case call(TemplateExpr, [TemplateArgument])
        case filter(TemplateExpr, String, [TemplateArgument])
        case test(TemplateExpr, String, [TemplateArgument], negated: Bool)
        case negate(TemplateExpr)
        case plus(TemplateExpr)
        case not(TemplateExpr)
        case binary(TemplateBinaryOperator, TemplateExpr, TemplateExpr)
        case and(TemplateExpr, TemplateExpr)
        case or(TemplateExpr, TemplateExpr)
        /// `a < b < c` is one chain, as in Python: each operand is evaluated once.
        case compare(TemplateExpr, [(TemplateCompareOperator, TemplateExpr)])
        case conditional(TemplateExpr, condition: TemplateExpr, otherwise: TemplateExpr?)
    }

    let kind: Kind
    let height: Int

    init(_ kind: Kind) {
        self.kind = kind
        let children: [TemplateExpr] = switch kind {
        case .literal, .name: []
        case .list(let items): items
        case .dict(let entries): entries.flatMap { [$0.key, $0.value] }
        case .attribute(let base, _), .negate(let base), .plus(let base), .not(let base): [base]
        case .item(let base, let key): [base, key]
        case .slice(let base, let start, let stop, let step): [base] + [start, stop, step].compactMap { $0 }
        case .call(let base, let args), .filter(let base, _, let args), .test(let base, _, let args, _):
            [base] + args.map(\.value)
        case .binary(_, let l, let r), .and(let l, let r), .or(let l, let r): [l, r]
        case .compare(let first, let rest): [first] + rest.map(\.1)
        case .conditional(let value, let condition, let otherwise): [value, condition] + [otherwise].compactMap { $0 }
        }
        height = 1 + (children.map(\.height).max() ?? 0)
    }
}

struct TemplateArgument: Sendable {
    /// Set for keyword arguments (`default(x, boolean=true)`).
    let name: String?
    let value: TemplateExpr
}

enum TemplateAssignTarget: Sendable {
    /// `set x = …`, or `set a, b = …` which unpacks.
    case names([String])
    /// `set ns.attr = …`, allowed on namespaces only.
    case attribute(object: String, name: String)
}

struct TemplateLoop: Sendable {
    let targets: [String]
    let iterable: TemplateExpr
    /// `for x in xs if cond`: filters before `loop.*` is computed, so `loop.length` counts survivors.
    let filter: TemplateExpr?
    let body: [TemplateNode]
    let otherwise: [TemplateNode]
    /// Whether the body mentions `loop`; building `loop.*` is most of an iteration's cost.
    let usesLoopVariable: Bool
    let location: SourceLocation
}

struct TemplateMacro: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: TemplateExpr?)]
    let body: [TemplateNode]
}

enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpr, SourceLocation)
    case conditional([(condition: TemplateExpr, body: [TemplateNode])], otherwise: [TemplateNode], SourceLocation)
    case loop(TemplateLoop)
    case assign(TemplateAssignTarget, TemplateExpr, SourceLocation)
    /// `{% set x %}…{% endset %}` stores the rendered body.
    case capture(String, [TemplateNode], SourceLocation)
    case macro(TemplateMacro, SourceLocation)
    /// `{% break %}` / `{% continue %}` (Hugging Face enables Jinja's loopcontrols extension).
    case loopControl(isBreak: Bool, SourceLocation)

    var location: SourceLocation? {
        switch self {
        case .text: nil
        case .output(_, let l), .conditional(_, _, let l), .assign(_, _, let l), .capture(_, _, let l),
             .macro(_, let l), .loopControl(_, let l): l
        case .loop(let loop): loop.location
        }
    }
}
