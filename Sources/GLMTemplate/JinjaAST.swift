/// The syntax tree of a parsed template (the subset of jinja2's nodes that chat templates can reach).

enum BinaryOperator {
    case add, subtract, multiply, divide, floorDivide, modulo, power
}

enum CompareOperator {
    case equal, notEqual, less, lessEqual, greater, greaterEqual, contains, notContains
}

/// Arguments as written at a call site: `f(a, b, key=c, *rest, **more)`.
struct CallArguments {
    var positional: [Expr] = []
    var keywords: [(String, Expr)] = []
    var star: Expr? = nil
    var doubleStar: Expr? = nil
}

/// `|name(args)` or `is name(args)`.
struct FilterCall {
    let name: String
    let arguments: CallArguments
}

indirect enum Expr {
    case constant(Value)
    case name(String)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attribute(Expr, String)
    case item(Expr, Expr)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
    case negate(Expr)
    case plus(Expr)
    case not(Expr)
    case binary(BinaryOperator, Expr, Expr)
    /// `a ~ b ~ c`.
    case concat([Expr])
    case and(Expr, Expr)
    case or(Expr, Expr)
    /// A comparison chain `a < b <= c`.
    case compare(Expr, [(CompareOperator, Expr)])
    /// `then if test else otherwise`; without `else` the result is undefined when the test fails.
    case conditional(test: Expr, then: Expr, otherwise: Expr?)
    case filter(Expr, FilterCall)
    case test(Expr, FilterCall, negated: Bool)
    case call(Expr, CallArguments)
}

/// The left-hand side of `set`, `for` and `with`.
indirect enum AssignTarget {
    case name(String)
    case tuple([AssignTarget])
    /// `ns.attribute` (only on a namespace).
    case namespaceAttribute(String, String)
}

final class MacroDefinition {
    let name: String
    let parameters: [String]
    /// Defaults for the last `defaults.count` parameters, evaluated at call time.
    let defaults: [Expr]
    let body: [Stmt]
    /// Whether the body mentions `varargs`/`kwargs`/`caller`, which is what lets extra arguments in (as in jinja2).
    let catchesVarargs: Bool
    let catchesKwargs: Bool
    let catchesCaller: Bool

    init(name: String, parameters: [String], defaults: [Expr], body: [Stmt],
         catchesVarargs: Bool, catchesKwargs: Bool, catchesCaller: Bool) {
        self.name = name
        self.parameters = parameters
        self.defaults = defaults
        self.body = body
        self.catchesVarargs = catchesVarargs
        self.catchesKwargs = catchesKwargs
        self.catchesCaller = catchesCaller
    }
}

final class ForLoop {
    let target: AssignTarget
    let iterable: Expr
    let condition: Expr?
    let isRecursive: Bool
    let body: [Stmt]
    let elseBody: [Stmt]

    init(target: AssignTarget, iterable: Expr, condition: Expr?, isRecursive: Bool, body: [Stmt], elseBody: [Stmt]) {
        self.target = target
        self.iterable = iterable
        self.condition = condition
        self.isRecursive = isRecursive
        self.body = body
        self.elseBody = elseBody
    }
}

/// A statement; `offset` is the byte offset of its tag, for error positions.
indirect enum Stmt {
    case text(String)
    case output(Expr, offset: Int)
    case conditional([(Expr, [Stmt])], otherwise: [Stmt], offset: Int)
    case forLoop(ForLoop, offset: Int)
    case assign(AssignTarget, Expr, offset: Int)
    case assignBlock(AssignTarget, filters: [FilterCall], body: [Stmt], offset: Int)
    case macro(MacroDefinition, offset: Int)
    /// `{% call(params) f(args) %}body{% endcall %}`: `body` becomes the `caller` macro.
    case callBlock(Expr, caller: MacroDefinition, offset: Int)
    case filterBlock([FilterCall], body: [Stmt], offset: Int)
    case with([(AssignTarget, Expr)], body: [Stmt], offset: Int)
    case breakLoop(offset: Int)
    case continueLoop(offset: Int)
    /// `{% block %}` and AssistantTracker's `{% generation %}`: the body renders in place.
    case scope([Stmt])
}
