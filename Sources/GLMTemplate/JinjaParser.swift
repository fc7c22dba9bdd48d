import GLMSupport

/// Recursive-descent parser following jinja2's `Parser` rule by rule (precedence, tuple handling, test
/// arguments without parentheses, filter-after-unary binding), with nesting bounded so hostile templates
/// cannot exhaust the stack.
struct JinjaParser {
    private let source: TemplateSource
    private let tokens: [Token]
    private var index = 0
    private var depth = 0
    private let maxDepth: Int
    private var loopDepth = 0
    /// Names read so far inside the current macro body (decides whether it takes varargs/kwargs/caller).
    private var referencedNames: Set<String> = []
    /// jinja2 rejects an unknown filter or test at compile time, except directly inside an `if` statement or
    /// an inline `x if c else y` (its "soft frames"), where the error is deferred to when it runs.
    private var inSoftFrame = false
    /// Unknown names seen outside soft frames, reported once the enclosing expression is known not to be
    /// an inline if.
    private var unknownNames: [GLMError] = []

    /// Every filter and test jinja2 3.1 knows; a name outside these fails at parse time as in jinja2.
    static let knownFilters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
        "wordwrap", "xmlattr",
    ]
    static let knownTests: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lower", "lessthan", "lt", "mapping",
        "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]

    init(source: TemplateSource, tokens: [Token], maxDepth: Int) {
        self.source = source
        self.tokens = tokens
        self.maxDepth = maxDepth
    }

    static func parse(_ source: TemplateSource, maxDepth: Int) throws(GLMError) -> [Stmt] {
        let tokens = try JinjaLexer.tokenize(source)
        var parser = JinjaParser(source: source, tokens: tokens, maxDepth: maxDepth)
        return try parser.subparse(endTags: nil, innermost: nil)
    }

    // MARK: - Token stream

    private var current: Token { tokens[min(index, tokens.count - 1)] }
    private func peek(_ n: Int = 1) -> Token { tokens[min(index + n, tokens.count - 1)] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func fail(_ message: String, at token: Token? = nil) -> GLMError {
        source.syntaxError(message, at: (token ?? current).offset)
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let n): return n
        case .string(let s): return pythonRepr(s)
        case .integer(let v): return pythonStr(v)
        case .float(let d): return pythonStr(.float(d))
        case .op(let o): return o
        case .eof: return "end of template"
        }
    }

    private func isOp(_ op: String, _ token: Token? = nil) -> Bool {
        if case .op(let o) = (token ?? current).kind { return o == op }
        return false
    }

    private func isName(_ name: String, _ token: Token? = nil) -> Bool {
        if case .name(let n) = (token ?? current).kind { return n == name }
        return false
    }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { advance(); return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { advance(); return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws(GLMError) {
        guard skipOp(op) else {
            if case .eof = current.kind { throw fail("unexpected end of template, expected '\(op)'.") }
            throw fail("expected token '\(op)', got '\(describe(current))'")
        }
    }

    private mutating func expectName() throws(GLMError) -> String {
        guard case .name(let n) = current.kind else {
            if case .eof = current.kind { throw fail("unexpected end of template, expected 'name'.") }
            throw fail("expected token 'name', got '\(describe(current))'")
        }
        advance()
        return n
    }

    private mutating func expectBlockEnd() throws(GLMError) {
        guard case .blockEnd = current.kind else {
            if case .eof = current.kind { throw fail("unexpected end of template, expected 'end of statement block'.") }
            throw fail("expected token 'end of statement block', got '\(describe(current))'")
        }
        advance()
    }

    private mutating func reportUnknownNames() throws(GLMError) {
        if let first = unknownNames.first { throw first }
    }

    /// Parses a body that jinja2 compiles in an inner (not soft) frame: loop bodies, macros, blocks.
    private mutating func parseInnerFrame<T>(_ body: (inout JinjaParser) throws(GLMError) -> T) throws(GLMError) -> T {
        let saved = inSoftFrame
        inSoftFrame = false
        defer { inSoftFrame = saved }
        return try body(&self)
    }

    private mutating func enter() throws(GLMError) {
        depth += 1
        if depth > maxDepth { throw fail("template nesting deeper than \(maxDepth) levels") }
    }

    private mutating func leave() { depth -= 1 }

    /// Counts one more level of a left-associative chain (`a + b + c`, `x|f|g`, `a.b.c`): each link nests
    /// the tree one level deeper, and the interpreter recurses that deep. The caller undoes `links` levels.
    private mutating func deepen(_ links: inout Int) throws(GLMError) {
        try enter()
        links += 1
    }

    // MARK: - Statements

    private mutating func subparse(endTags: [String]?, innermost: String?) throws(GLMError) -> [Stmt] {
        var body: [Stmt] = []
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                body.append(.text(text))
                advance()
            case .variableBegin:
                advance()
                let expr = try parseTuple(withCondexpr: true)
                try reportUnknownNames()
                guard case .variableEnd = current.kind else {
                    if case .eof = current.kind { throw fail("unexpected end of template, expected 'end of print statement'.") }
                    throw fail("expected token 'end of print statement', got '\(describe(current))'")
                }
                advance()
                body.append(.output(expr, offset: token.offset))
            case .blockBegin:
                advance()
                if let endTags, case .name(let n) = current.kind, endTags.contains(n) { return body }
                body.append(try parseStatement(blockOffset: token.offset))
                try reportUnknownNames()
                try expectBlockEnd()
            case .eof:
                if let endTags {
                    let expected = endTags.map { "'\($0)'" }.joined(separator: " or ")
                    var message = "Unexpected end of template. Jinja was looking for the following tags: \(expected)."
                    if let innermost { message += " The innermost block that needs to be closed is '\(innermost)'." }
                    throw fail(message)
                }
                return body
            default:
                throw fail("unexpected '\(describe(token))'")
            }
        }
    }

    /// Parses the body of a block statement up to one of `endTags`; the stream is left on that tag's name,
    /// or just after it with `dropNeedle`.
    private mutating func parseStatements(_ endTags: [String], innermost: String, dropNeedle: Bool = false,
                                          soft: Bool = false) throws(GLMError) -> [Stmt] {
        _ = skipOp(":")
        try expectBlockEnd()
        try enter()
        let savedSoft = inSoftFrame
        inSoftFrame = soft
        defer { leave(); inSoftFrame = savedSoft }
        let body = try subparse(endTags: endTags, innermost: innermost)
        if dropNeedle { advance() }
        return body
    }

    private mutating func parseStatement(blockOffset: Int) throws(GLMError) -> Stmt {
        guard case .name(let keyword) = current.kind else {
            if case .eof = current.kind { throw fail("unexpected end of template, expected statement.") }
            throw fail("tag name expected")
        }
        advance()
        switch keyword {
        case "if": return try parseIf(offset: blockOffset)
        case "for": return try parseFor(offset: blockOffset)
        case "set": return try parseSet(offset: blockOffset)
        case "macro": return try parseMacro(offset: blockOffset)
        case "call": return try parseCallBlock(offset: blockOffset)
        case "filter":
            let filters = try parseFilterChain(startInline: true)
            let body = try parseStatements(["endfilter"], innermost: "filter", dropNeedle: true)
            return .filterBlock(filters, body: body, offset: blockOffset)
        case "with": return try parseWith(offset: blockOffset)
        case "print": return .output(try parseTuple(withCondexpr: true), offset: blockOffset)
        case "break", "continue":
            guard loopDepth > 0 else { throw fail("'\(keyword)' outside of a loop") }
            return keyword == "break" ? .breakLoop(offset: blockOffset) : .continueLoop(offset: blockOffset)
        case "generation":
            return .scope(try parseStatements(["endgeneration"], innermost: "generation", dropNeedle: true))
        case "block":
            let name = try expectName()
            _ = skipName("scoped")
            _ = skipName("required")
            let body = try parseStatements(["endblock"], innermost: "block", dropNeedle: true)
            _ = skipName(name)
            return .scope(body)
        case "extends", "include", "import", "from":
            throw fail("'\(keyword)' needs a template loader, which chat templates do not have")
        default:
            throw fail("Encountered unknown tag '\(keyword)'.")
        }
    }

    private mutating func parseIf(offset: Int) throws(GLMError) -> Stmt {
        var branches: [(Expr, [Stmt])] = []
        var otherwise: [Stmt] = []
        let savedSoft = inSoftFrame
        defer { inSoftFrame = savedSoft }
        while true {
            inSoftFrame = true
            let test = try parseTuple(withCondexpr: false)
            let body = try parseStatements(["elif", "else", "endif"], innermost: "if", soft: true)
            branches.append((test, body))
            let tag = try expectName()
            if tag == "elif" { continue }
            if tag == "else" { otherwise = try parseStatements(["endif"], innermost: "if", dropNeedle: true, soft: true) }
            break
        }
        return .conditional(branches, otherwise: otherwise, offset: offset)
    }

    private mutating func parseFor(offset: Int) throws(GLMError) -> Stmt {
        let target = try parseAssignTarget(extraEnd: ["in"])
        guard skipName("in") else { throw fail("expected token 'in', got '\(describe(current))'") }
        let iterable = try parseTuple(withCondexpr: false, extraEnd: ["recursive"])
        var condition: Expr? = nil
        if skipName("if") { condition = try parseInnerFrame { (p: inout JinjaParser) throws(GLMError) in try p.parseExpression() } }
        let recursive = skipName("recursive")
        loopDepth += 1
        let body = try parseStatements(["endfor", "else"], innermost: "for")
        loopDepth -= 1
        var elseBody: [Stmt] = []
        if try expectName() == "else" {
            elseBody = try parseStatements(["endfor"], innermost: "for", dropNeedle: true)
        }
        return .forLoop(ForLoop(target: target, iterable: iterable, condition: condition, isRecursive: recursive,
                                body: body, elseBody: elseBody), offset: offset)
    }

    private mutating func parseSet(offset: Int) throws(GLMError) -> Stmt {
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            return .assign(target, try parseTuple(withCondexpr: true), offset: offset)
        }
        let filters = try parseFilterChain(startInline: false)
        let body = try parseStatements(["endset"], innermost: "set", dropNeedle: true)
        return .assignBlock(target, filters: filters, body: body, offset: offset)
    }

    private mutating func parseWith(offset: Int) throws(GLMError) -> Stmt {
        var assignments: [(AssignTarget, Expr)] = []
        while true {
            if case .blockEnd = current.kind { break }
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        let body = try parseStatements(["endwith"], innermost: "with", dropNeedle: true)
        return .with(assignments, body: body, offset: offset)
    }

    private mutating func parseSignature() throws(GLMError) -> ([String], [Expr]) {
        try expectOp("(")
        var names: [String] = []
        var defaults: [Expr] = []
        while !isOp(")") {
            if !names.isEmpty { try expectOp(",") }
            let name = try expectName()
            if skipOp("=") {
                defaults.append(try parseExpression())
            } else if !defaults.isEmpty {
                throw fail("non-default argument follows default argument")
            }
            names.append(name)
        }
        try expectOp(")")
        return (names, defaults)
    }

    private mutating func parseMacroBody(name: String, parameters: [String], defaults: [Expr], endTag: String)
        throws(GLMError) -> MacroDefinition {
        let outerNames = referencedNames
        let outerLoopDepth = loopDepth
        referencedNames = []
        loopDepth = 0
        let body = try parseStatements([endTag], innermost: endTag == "endmacro" ? "macro" : "call", dropNeedle: true)
        let used = referencedNames
        referencedNames = outerNames.union(used)
        loopDepth = outerLoopDepth
        return MacroDefinition(name: name, parameters: parameters, defaults: defaults, body: body,
                               catchesVarargs: used.contains("varargs"), catchesKwargs: used.contains("kwargs"),
                               catchesCaller: used.contains("caller"))
    }

    private mutating func parseMacro(offset: Int) throws(GLMError) -> Stmt {
        let name = try expectName()
        let (parameters, defaults) = try parseSignature()
        let macro = try parseMacroBody(name: name, parameters: parameters, defaults: defaults, endTag: "endmacro")
        return .macro(macro, offset: offset)
    }

    private mutating func parseCallBlock(offset: Int) throws(GLMError) -> Stmt {
        var parameters: [String] = []
        var defaults: [Expr] = []
        if isOp("(") { (parameters, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call") }
        let caller = try parseMacroBody(name: "caller", parameters: parameters, defaults: defaults, endTag: "endcall")
        return .callBlock(call, caller: caller, offset: offset)
    }

    private mutating func parseAssignTarget(extraEnd: [String] = [], withNamespace: Bool = false) throws(GLMError) -> AssignTarget {
        if withNamespace, case .name(let n) = current.kind, isOp(".", peek()) {
            advance()
            advance()
            return .namespaceAttribute(n, try expectName())
        }
        let expr = try parseTuple(simplified: true, extraEnd: extraEnd)
        return try assignTarget(expr)
    }

    private func assignTarget(_ expr: Expr) throws(GLMError) -> AssignTarget {
        switch expr {
        case .name(let n):
            if ["true", "false", "none", "True", "False", "None"].contains(n) { throw fail("can't assign to '\(n)'") }
            return .name(n)
        case .tuple(let items):
            var targets: [AssignTarget] = []
            for item in items { targets.append(try assignTarget(item)) }
            return .tuple(targets)
        default:
            throw fail("can't assign to this expression")
        }
    }

    // MARK: - Expressions

    private func isTupleEnd(_ extraEnd: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op(")"): return true
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }

    private mutating func parseTuple(simplified: Bool = false, withCondexpr: Bool = true, extraEnd: [String] = [],
                                     explicitParentheses: Bool = false) throws(GLMError) -> Expr {
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            if simplified {
                items.append(try parsePrimary())
            } else if withCondexpr {
                items.append(try parseExpression())
            } else {
                items.append(try parseOr())
            }
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw fail("Expected an expression, got '\(describe(current))'") }
        }
        return .tuple(items)
    }

    private mutating func parseExpression() throws(GLMError) -> Expr {
        try enter()
        defer { leave() }
        let mark = unknownNames.count
        var expr = try parseOr()
        while skipName("if") {
            let savedSoft = inSoftFrame
            inSoftFrame = true
            defer { inSoftFrame = savedSoft }
            let test = try parseOr()
            var otherwise: Expr? = nil
            if skipName("else") { otherwise = try parseExpression() }
            expr = .conditional(test: test, then: expr, otherwise: otherwise)
            unknownNames.removeSubrange(mark...)
        }
        return expr
    }

    private mutating func parseOr() throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var left = try parseAnd()
        while skipName("or") { try deepen(&links); left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var left = try parseNot()
        while skipName("and") { try deepen(&links); left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws(GLMError) -> Expr {
        if isName("not") {
            advance()
            try enter()
            defer { leave() }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(GLMError) -> Expr {
        let left = try parseMath1()
        var operations: [(CompareOperator, Expr)] = []
        while true {
            let op: CompareOperator
            if case .op(let o) = current.kind, let c = [ "==": CompareOperator.equal, "!=": .notEqual, "<": .less,
                                                        "<=": .lessEqual, ">": .greater, ">=": .greaterEqual][o] {
                op = c
                advance()
            } else if isName("in") {
                op = .contains
                advance()
            } else if isName("not") && isName("in", peek()) {
                op = .notContains
                advance()
                advance()
            } else {
                break
            }
            operations.append((op, try parseMath1()))
        }
        return operations.isEmpty ? left : .compare(left, operations)
    }

    private mutating func parseMath1() throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var left = try parseConcat()
        while true {
            if isOp("+") || isOp("-") { try deepen(&links) }
            if skipOp("+") { left = .binary(.add, left, try parseConcat()) }
            else if skipOp("-") { left = .binary(.subtract, left, try parseConcat()) }
            else { return left }
        }
    }

    private mutating func parseConcat() throws(GLMError) -> Expr {
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : .concat(items)
    }

    private mutating func parseMath2() throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var left = try parsePow()
        while true {
            let op: BinaryOperator
            if isOp("*") { op = .multiply } else if isOp("/") { op = .divide }
            else if isOp("//") { op = .floorDivide } else if isOp("%") { op = .modulo }
            else { return left }
            advance()
            try deepen(&links)
            left = .binary(op, left, try parsePow())
        }
    }

    private mutating func parsePow() throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var left = try parseUnary()
        while skipOp("**") { try deepen(&links); left = .binary(.power, left, try parseUnary()) }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(GLMError) -> Expr {
        try enter()
        defer { leave() }
        var node: Expr
        if skipOp("-") {
            node = .negate(try parseUnary(withFilter: false))
        } else if skipOp("+") {
            node = .plus(try parseUnary(withFilter: false))
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws(GLMError) -> Expr {
        let token = current
        switch token.kind {
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return .constant(.bool(true))
            case "false", "False": return .constant(.bool(false))
            case "none", "None": return .constant(.none)
            default:
                referencedNames.insert(n)
                return .name(n)
            }
        case .string(let s):
            advance()
            var text = s
            while case .string(let more) = current.kind { text += more; advance() }
            return .constant(.string(text))
        case .integer(let v):
            advance()
            return .constant(v)
        case .float(let d):
            advance()
            return .constant(.float(d))
        case .op("("):
            advance()
            try enter()
            defer { leave() }
            let node = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return node
        case .op("["):
            advance()
            try enter()
            defer { leave() }
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            advance()
            try enter()
            defer { leave() }
            var pairs: [(Expr, Expr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(pairs)
        case .eof:
            throw fail("unexpected end of template")
        default:
            throw fail("unexpected '\(describe(token))'")
        }
    }

    private mutating func parsePostfix(_ start: Expr) throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var node = start
        while true {
            if isOp(".") || isOp("[") || isOp("(") { try deepen(&links) }
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ start: Expr) throws(GLMError) -> Expr {
        var links = 0
        defer { depth -= links }
        var node = start
        while true {
            if isOp("|") || isName("is") || isOp("(") { try deepen(&links) }
            if isOp("|") {
                advance()
                node = .filter(node, try parseFilterCall())
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expr) throws(GLMError) -> Expr {
        try enter()
        defer { leave() }
        if skipOp(".") {
            let token = current
            advance()
            switch token.kind {
            case .name(let n): return .attribute(node, n)
            case .integer(let v): return .item(node, .constant(v))
            default: throw fail("expected name or number", at: token)
            }
        }
        try expectOp("[")
        var items: [Expr] = []
        while !isOp("]") {
            if !items.isEmpty { try expectOp(",") }
            items.append(try parseSubscribed(node))
        }
        try expectOp("]")
        if items.count == 1 {
            if case .slice = items[0] { return items[0] }
            return .item(node, items[0])
        }
        return .item(node, .tuple(items))
    }

    /// One subscript: an expression or a slice `start:stop:step` (returned as `.slice` on `node`).
    private mutating func parseSubscribed(_ node: Expr) throws(GLMError) -> Expr {
        var start: Expr? = nil
        if !isOp(":") {
            let expr = try parseExpression()
            if !isOp(":") { return expr }
            start = expr
        }
        advance()
        var stop: Expr? = nil
        if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
        var step: Expr? = nil
        if skipOp(":") {
            if !isOp("]") && !isOp(",") { step = try parseExpression() }
        }
        return .slice(node, start: start, stop: stop, step: step)
    }

    private mutating func parseCallArguments() throws(GLMError) -> CallArguments {
        try expectOp("(")
        try enter()
        defer { leave() }
        var args = CallArguments()
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if skipOp("*") {
                guard args.star == nil && args.doubleStar == nil else { throw fail("invalid syntax for function call expression") }
                args.star = try parseExpression()
            } else if skipOp("**") {
                guard args.doubleStar == nil else { throw fail("invalid syntax for function call expression") }
                args.doubleStar = try parseExpression()
            } else if case .name(let key) = current.kind, isOp("=", peek()) {
                guard args.doubleStar == nil else { throw fail("invalid syntax for function call expression") }
                advance()
                advance()
                args.keywords.append((key, try parseExpression()))
            } else {
                guard args.star == nil && args.doubleStar == nil && args.keywords.isEmpty else {
                    throw fail("invalid syntax for function call expression")
                }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    private mutating func parseDottedName() throws(GLMError) -> String {
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        return name
    }

    private mutating func parseFilterCall() throws(GLMError) -> FilterCall {
        let token = current
        let name = try parseDottedName()
        if !JinjaParser.knownFilters.contains(name) && !inSoftFrame {
            unknownNames.append(source.syntaxError("No filter named '\(name)'.", at: token.offset))
        }
        let args = isOp("(") ? try parseCallArguments() : CallArguments()
        return FilterCall(name: name, arguments: args)
    }

    /// `|a|b(x)` after `{% filter %}` or `{% set x %}`.
    private mutating func parseFilterChain(startInline: Bool) throws(GLMError) -> [FilterCall] {
        var filters: [FilterCall] = []
        var inline = startInline
        while isOp("|") || inline {
            if !inline { advance() }
            filters.append(try parseFilterCall())
            inline = false
        }
        return filters
    }

    private mutating func parseTest(_ node: Expr) throws(GLMError) -> Expr {
        advance()
        let negated = skipName("not")
        let token = current
        let name = try parseDottedName()
        if !JinjaParser.knownTests.contains(name) && !inSoftFrame {
            unknownNames.append(source.syntaxError("No test named '\(name)'.", at: token.offset))
        }
        var args = CallArguments()
        if isOp("(") {
            args = try parseCallArguments()
        } else {
            var startsArgument = false
            switch current.kind {
            case .name(let n): startsArgument = !["else", "or", "and"].contains(n)
            case .string, .integer, .float, .op("("), .op("["), .op("{"): startsArgument = true
            default: break
            }
            if startsArgument {
                if isName("is") { throw fail("You cannot chain multiple tests with is") }
                args.positional = [try parsePostfix(try parsePrimary())]
            }
        }
        return .test(node, FilterCall(name: name, arguments: args), negated: negated)
    }
}
