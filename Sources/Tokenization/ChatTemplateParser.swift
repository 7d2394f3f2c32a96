/// Recursive-descent parser from tokens to the template AST. Operator precedence follows Jinja's
/// parser, lowest first: `x if c else y`, `or`, `and`, `not`, comparisons and `in`, `+ -`, `~`,
/// `* / // %`, `**`, unary `-`, then filters `|f` and tests `is t`, which bind tighter than any
/// binary operator (`'a' + x | trim` trims only `x`).
struct TemplateParser {
    private let tokens: [TemplateToken]
    private var index = 0
    private var nesting = 0
    private var loopDepth = 0
    /// Whether the name `loop` appeared since the innermost enclosing `for` began.
    private var sawLoopName = false

    init(tokens: [TemplateToken]) {
        self.tokens = tokens
    }

    mutating func parseTemplate() throws(ChatTemplateError) -> [TemplateNode] {
        try parseBody(until: [], opener: nil).body
    }

    // MARK: Statements

    /// Parses nodes until one of `terminators` opens a block tag; consumes that tag's name.
    private mutating func parseBody(until terminators: Set<String>, opener: (tag: String, at: SourceLocation)?)
        throws(ChatTemplateError) -> (body: [TemplateNode], terminator: String)
    {
        var body: [TemplateNode] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let text):
                advance()
                body.append(.text(text))
            case .variableBegin:
                advance()
                let value = try parseTuple()
                try expect(.variableEnd, "'}}'")
                body.append(.output(value, token.location))
            case .blockBegin:
                advance()
                guard case .name(let tag) = current.kind else { throw error("expected a tag name") }
                if terminators.contains(tag) {
                    advance()
                    return (body, tag)
                }
                body += try parseStatement(tag, at: token.location)
            case .end:
                if let opener {
                    let expected = terminators.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw ChatTemplateError.syntax(message: "'\(opener.tag)' block is never closed (expected \(expected))",
                                                   line: opener.at.line, column: opener.at.column)
                }
                return (body, "")
            default:
                throw error("unexpected \(describe(token))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, at location: SourceLocation) throws(ChatTemplateError) -> [TemplateNode] {
        let tagToken = current
        advance()
        switch tag {
        case "if": return [try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseIf(at: location) }]
        case "for": return [try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseFor(at: location) }]
        case "set": return [try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseSet(at: location) }]
        case "macro": return [try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseMacro(at: location) }]
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'\(tag)' outside of a loop", at: tagToken) }
            try expect(.blockEnd, "'%}'")
            return [.loopControl(isBreak: tag == "break", location)]
        case "generation":
            // Hugging Face's marker for assistant-token masks; it renders its body unchanged.
            try expect(.blockEnd, "'%}'")
            return try nested { (p: inout Self) throws(ChatTemplateError) in
                let body = try p.parseBody(until: ["endgeneration"], opener: (tag, location)).body
                try p.expect(.blockEnd, "'%}'")
                return body
            }
        case "elif", "else", "endif", "endfor", "endset", "endmacro", "endgeneration":
            throw error("unexpected '\(tag)'", at: tagToken)
        default:
            throw error("unknown or unsupported tag '\(tag)'", at: tagToken)
        }
    }

    private mutating func parseIf(at location: SourceLocation) throws(ChatTemplateError) -> TemplateNode {
        var branches: [(condition: TemplateExpr, body: [TemplateNode])] = []
        var otherwise: [TemplateNode] = []
        var terminator = "elif"
        while terminator == "elif" {
            let condition = try parseExpression(allowConditional: false)
            try expect(.blockEnd, "'%}'")
            let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", location))
            branches.append((condition, body))
            terminator = end
        }
        if terminator == "else" {
            try expect(.blockEnd, "'%}'")
            otherwise = try parseBody(until: ["endif"], opener: ("if", location)).body
        }
        try expect(.blockEnd, "'%}'")
        return .conditional(branches, otherwise: otherwise, location)
    }

    private mutating func parseFor(at location: SourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let targets = try parseTargetNames()
        try expectName("in")
        let iterable = try parseExpression(allowConditional: false)
        var filter: TemplateExpr?
        if consumeName("if") { filter = try parseExpression() }
        if case .name("recursive") = current.kind { throw error("recursive loops are not supported") }
        try expect(.blockEnd, "'%}'")
        // No need to restore on failure: a syntax error ends the parse.
        let outerSawLoopName = sawLoopName
        sawLoopName = false
        loopDepth += 1
        let (body, terminator) = try parseBody(until: ["else", "endfor"], opener: ("for", location))
        loopDepth -= 1
        let usesLoopVariable = sawLoopName
        sawLoopName = outerSawLoopName || usesLoopVariable
        var otherwise: [TemplateNode] = []
        if terminator == "else" {
            try expect(.blockEnd, "'%}'")
            otherwise = try parseBody(until: ["endfor"], opener: ("for", location)).body
        }
        try expect(.blockEnd, "'%}'")
        return .loop(TemplateLoop(targets: targets, iterable: iterable, filter: filter, body: body,
                                  otherwise: otherwise, usesLoopVariable: usesLoopVariable, location: location))
    }

    private mutating func parseSet(at location: SourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let target: TemplateAssignTarget
        let first = try expectName()
        if consumeSymbol(".") {
            target = .attribute(object: first, name: try expectName())
        } else if case .symbol(",") = current.kind {
            advance()
            target = .names([first] + (try parseTargetNames()))
        } else {
            target = .names([first])
        }
        if consumeSymbol("=") {
            let value = try parseTuple()
            try expect(.blockEnd, "'%}'")
            return .assign(target, value, location)
        }
        guard case .names(let names) = target, names.count == 1 else { throw error("expected '='") }
        try expect(.blockEnd, "'%}'")
        let body = try parseBody(until: ["endset"], opener: ("set", location)).body
        try expect(.blockEnd, "'%}'")
        return .capture(names[0], body, location)
    }

    private mutating func parseMacro(at location: SourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let name = try expectName()
        try expect(.symbol("("), "'('")
        var parameters: [(name: String, defaultValue: TemplateExpr?)] = []
        while !consumeSymbol(")") {
            if !parameters.isEmpty { try expect(.symbol(","), "',' or ')'") }
            let parameter = try expectName()
            parameters.append((parameter, consumeSymbol("=") ? try parseExpression() : nil))
        }
        try expect(.blockEnd, "'%}'")
        // `break` inside a macro cannot reach a loop around the macro's call.
        let outerLoopDepth = loopDepth
        loopDepth = 0
        let body = try parseBody(until: ["endmacro"], opener: ("macro", location)).body
        loopDepth = outerLoopDepth
        try expect(.blockEnd, "'%}'")
        return .macro(TemplateMacro(name: name, parameters: parameters, body: body), location)
    }

    /// `x`, `a, b` or `(a, b)` after `for` or `set`.
    private mutating func parseTargetNames() throws(ChatTemplateError) -> [String] {
        let parenthesized = consumeSymbol("(")
        var names = [try expectName()]
        while consumeSymbol(",") { names.append(try expectName()) }
        if parenthesized { try expect(.symbol(")"), "')'") }
        return names
    }

    // MARK: Expressions

    /// An expression, or a comma-separated tuple of them (evaluated as a list).
    private mutating func parseTuple() throws(ChatTemplateError) -> TemplateExpr {
        let first = try parseExpression()
        guard case .symbol(",") = current.kind else { return first }
        var items = [first]
        while consumeSymbol(",") {
            if [.variableEnd, .blockEnd, .symbol(")")].contains(current.kind) { break }
            items.append(try parseExpression())
        }
        return try make(.list(items))
    }

    private mutating func parseExpression(allowConditional: Bool = true) throws(ChatTemplateError) -> TemplateExpr {
        try nested { (p: inout Self) throws(ChatTemplateError) in
            allowConditional ? try p.parseConditional() : try p.parseOr()
        }
    }

    private mutating func parseConditional() throws(ChatTemplateError) -> TemplateExpr {
        var expr = try parseOr()
        while consumeName("if") {
            let condition = try parseOr()
            let otherwise = consumeName("else")
                ? try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseConditional() } : nil
            expr = try make(.conditional(expr, condition: condition, otherwise: otherwise))
        }
        return expr
    }

    private mutating func parseOr() throws(ChatTemplateError) -> TemplateExpr {
        var expr = try parseAnd()
        while consumeName("or") { expr = try make(.or(expr, try parseAnd())) }
        return expr
    }

    private mutating func parseAnd() throws(ChatTemplateError) -> TemplateExpr {
        var expr = try parseNot()
        while consumeName("and") { expr = try make(.and(expr, try parseNot())) }
        return expr
    }

    private mutating func parseNot() throws(ChatTemplateError) -> TemplateExpr {
        guard consumeName("not") else { return try parseCompare() }
        return try make(.not(try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseNot() }))
    }

    private mutating func parseCompare() throws(ChatTemplateError) -> TemplateExpr {
        let first = try parseBinary(level: 0)
        var rest: [(TemplateCompareOperator, TemplateExpr)] = []
        while true {
            let op: TemplateCompareOperator
            if case .symbol(let s) = current.kind, let compare = TemplateCompareOperator(rawValue: s) {
                advance()
                op = compare
            } else if consumeName("in") {
                op = .contains
            } else if case .name("not") = current.kind, case .name("in") = peek.kind {
                advance()
                advance()
                op = .notContains
            } else {
                break
            }
            rest.append((op, try parseBinary(level: 0)))
        }
        return rest.isEmpty ? first : try make(.compare(first, rest))
    }

    /// Left-associative binary levels, loosest first: `+ -`, `~`, `* / // %`, `**`.
    private static let binaryLevels: [[TemplateBinaryOperator]] = [
        [.add, .subtract], [.concat], [.multiply, .divide, .floorDivide, .modulo], [.power],
    ]

    private mutating func parseBinary(level: Int) throws(ChatTemplateError) -> TemplateExpr {
        guard level < Self.binaryLevels.count else { return try parseUnary(withFilters: true) }
        var expr = try parseBinary(level: level + 1)
        while case .symbol(let s) = current.kind, let op = TemplateBinaryOperator(rawValue: s),
              Self.binaryLevels[level].contains(op) {
            advance()
            expr = try make(.binary(op, expr, try parseBinary(level: level + 1)))
        }
        return expr
    }

    private mutating func parseUnary(withFilters: Bool) throws(ChatTemplateError) -> TemplateExpr {
        var expr: TemplateExpr
        if case .symbol(let sign) = current.kind, sign == "-" || sign == "+" {
            advance()
            let operand = try nested { (p: inout Self) throws(ChatTemplateError) in try p.parseUnary(withFilters: false) }
            expr = try make(sign == "-" ? .negate(operand) : .plus(operand))
        } else {
            expr = try parsePrimary()
        }
        expr = try parsePostfix(expr)
        return withFilters ? try parseFilters(expr) : expr
    }

    private mutating func parsePrimary() throws(ChatTemplateError) -> TemplateExpr {
        let token = current
        advance()
        switch token.kind {
        case .name("true"), .name("True"): return try make(.literal(.bool(true)))
        case .name("false"), .name("False"): return try make(.literal(.bool(false)))
        case .name("none"), .name("None"): return try make(.literal(TemplateValue.none))
        case .name(let name):
            if name == "loop" { sawLoopName = true }
            return try make(.name(name))
        case .string(var value):
            // Adjacent literals concatenate, as in Python.
            while case .string(let next) = current.kind {
                value += next
                advance()
            }
            return try make(.literal(.string(value)))
        case .integer(let i): return try make(.literal(.int(i)))
        case .float(let d): return try make(.literal(.double(d)))
        case .symbol("("):
            if consumeSymbol(")") { return try make(.list([])) }
            let expr = try parseTuple()
            try expect(.symbol(")"), "')'")
            return expr
        case .symbol("["):
            var items: [TemplateExpr] = []
            while !consumeSymbol("]") {
                if !items.isEmpty { try expect(.symbol(","), "',' or ']'") }
                if consumeSymbol("]") { break }
                items.append(try parseExpression())
            }
            return try make(.list(items))
        case .symbol("{"):
            var entries: [(key: TemplateExpr, value: TemplateExpr)] = []
            while !consumeSymbol("}") {
                if !entries.isEmpty { try expect(.symbol(","), "',' or '}'") }
                if consumeSymbol("}") { break }
                let key = try parseExpression()
                try expect(.symbol(":"), "':'")
                entries.append((key, try parseExpression()))
            }
            return try make(.dict(entries))
        default:
            throw error("unexpected \(describe(token))", at: token)
        }
    }

    /// `.name`, `.0`, `[key]`, `[start:stop:step]` and calls.
    private mutating func parsePostfix(_ base: TemplateExpr) throws(ChatTemplateError) -> TemplateExpr {
        var expr = base
        while true {
            if consumeSymbol(".") {
                let token = current
                advance()
                switch token.kind {
                case .name(let name): expr = try make(.attribute(expr, name))
                case .integer(let i): expr = try make(.item(expr, try make(.literal(.int(i)))))
                default: throw error("expected an attribute name after '.'", at: token)
                }
            } else if consumeSymbol("[") {
                expr = try parseSubscript(expr)
            } else if case .symbol("(") = current.kind {
                expr = try make(.call(expr, try parseArguments()))
            } else {
                return expr
            }
        }
    }

    private mutating func parseSubscript(_ base: TemplateExpr) throws(ChatTemplateError) -> TemplateExpr {
        var start: TemplateExpr?
        if case .symbol(":") = current.kind {} else {
            let key = try parseExpression()
            if consumeSymbol("]") { return try make(.item(base, key)) }
            start = key
        }
        try expect(.symbol(":"), "':' or ']'")
        var stop: TemplateExpr?
        var step: TemplateExpr?
        if ![.symbol("]"), .symbol(":")].contains(current.kind) { stop = try parseExpression() }
        if consumeSymbol(":"), current.kind != .symbol("]") { step = try parseExpression() }
        try expect(.symbol("]"), "']'")
        return try make(.slice(base, start: start, stop: stop, step: step))
    }

    private mutating func parseArguments() throws(ChatTemplateError) -> [TemplateArgument] {
        try expect(.symbol("("), "'('")
        var arguments: [TemplateArgument] = []
        while !consumeSymbol(")") {
            if !arguments.isEmpty { try expect(.symbol(","), "',' or ')'") }
            if consumeSymbol(")") { break }
            if case .name(let name) = current.kind, peek.kind == .symbol("=") {
                advance()
                advance()
                arguments.append(TemplateArgument(name: name, value: try parseExpression()))
            } else {
                if arguments.last?.name != nil { throw error("positional argument follows keyword argument") }
                arguments.append(TemplateArgument(name: nil, value: try parseExpression()))
            }
        }
        return arguments
    }

    /// Filters, tests and calls on their result, in any order: `x | trim | length is odd`.
    private mutating func parseFilters(_ base: TemplateExpr) throws(ChatTemplateError) -> TemplateExpr {
        var expr = base
        while true {
            if consumeSymbol("|") {
                let name = try expectName()
                let arguments = current.kind == .symbol("(") ? try parseArguments() : []
                expr = try make(.filter(expr, name, arguments))
            } else if consumeName("is") {
                let negated = consumeName("not")
                let name = try expectName()
                expr = try make(.test(expr, name, try parseTestArguments(), negated: negated))
            } else if case .symbol("(") = current.kind {
                expr = try make(.call(expr, try parseArguments()))
            } else {
                return expr
            }
        }
    }

    /// A test takes parenthesized arguments or one bare operand: `is divisibleby(3)`, `is sameas true`.
    private mutating func parseTestArguments() throws(ChatTemplateError) -> [TemplateArgument] {
        switch current.kind {
        case .symbol("("):
            return try parseArguments()
        case .name(let word) where !["else", "or", "and", "if", "in", "not", "is"].contains(word):
            return [TemplateArgument(name: nil, value: try parsePostfix(try parsePrimary()))]
        case .string, .integer, .float, .symbol("["), .symbol("{"):
            return [TemplateArgument(name: nil, value: try parsePostfix(try parsePrimary()))]
        default:
            return []
        }
    }

    // MARK: Token helpers

    private var current: TemplateToken { tokens[index] }
    private var peek: TemplateToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private mutating func consumeSymbol(_ symbol: String) -> Bool {
        guard current.kind == .symbol(symbol) else { return false }
        advance()
        return true
    }

    private mutating func consumeName(_ name: String) -> Bool {
        guard current.kind == .name(name) else { return false }
        advance()
        return true
    }

    private mutating func expect(_ kind: TemplateToken.Kind, _ what: String) throws(ChatTemplateError) {
        guard current.kind == kind else { throw error("expected \(what), found \(describe(current))") }
        advance()
    }

    private mutating func expectName(_ name: String) throws(ChatTemplateError) {
        guard consumeName(name) else { throw error("expected '\(name)', found \(describe(current))") }
    }

    private mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let name) = current.kind else { throw error("expected a name, found \(describe(current))") }
        advance()
        return name
    }

    private func make(_ kind: TemplateExpr.Kind) throws(ChatTemplateError) -> TemplateExpr {
        let expr = TemplateExpr(kind)
        guard expr.height <= TemplateLimits.maxExpressionHeight else { throw error("expression is too deeply nested") }
        return expr
    }

    /// Runs `body` one recursion level deeper, failing cleanly before the stack could overflow.
    private mutating func nested<T>(_ body: (inout Self) throws(ChatTemplateError) -> T) throws(ChatTemplateError) -> T {
        guard nesting < TemplateLimits.maxNesting else { throw error("template is too deeply nested") }
        nesting += 1
        defer { nesting -= 1 }
        return try body(&self)
    }

    private func error(_ message: String, at token: TemplateToken? = nil) -> ChatTemplateError {
        let location = (token ?? current).location
        return .syntax(message: message, line: location.line, column: location.column)
    }

    private func describe(_ token: TemplateToken) -> String {
        switch token.kind {
        case .text: "text"
        case .blockBegin: "'{%'"
        case .blockEnd: "'%}'"
        case .variableBegin: "'{{'"
        case .variableEnd: "'}}'"
        case .name(let name): "'\(name)'"
        case .string(let s): "string \(TemplateValue.string(s).repr)"
        case .integer(let i): "number \(i)"
        case .float(let d): "number \(d)"
        case .symbol(let s): "'\(s)'"
        case .end: "end of template"
        }
    }
}
