import GLMJSON
import GLMSupport

/// Bounds that keep a hostile template from exhausting time, memory or the stack. Exceeding one throws
/// `GLMError` with code `.limitExceeded`.
public struct RenderLimits: Sendable {
    /// Largest output, and largest string or list a template may build.
    public var maxOutputBytes = 64 << 20
    /// Loop iterations plus macro calls in one render.
    public var maxIterations = 5_000_000
    /// Nested macro calls (and recursive-loop levels).
    public var maxCallDepth = 256
    /// Nesting of statements and expressions accepted by the parser (each link of `a + b + c` or `x|f|g`
    /// counts as a level, since it nests the tree).
    public var maxNestingDepth = 256
    /// Nesting of lists and dicts a template may store in a namespace.
    public var maxValueDepth = 1000
    /// Stack a render may use for recursion (macros calling macros), measured from where `render` was
    /// called; the calling thread needs this much free stack plus a margin (Linux threads get 8 MiB).
    public var stackBudgetBytes = 1 << 20

    public init() {}
}

/// A Jinja2 template parsed once and rendered any number of times, with the semantics of the environment
/// transformers uses for chat templates: `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`
/// with the loopcontrols extension, `{% generation %}` blocks, `tojson` = Python `json.dumps`, and the globals
/// `raise_exception`, `strftime_now`, `namespace`, `dict`, `range`, `joiner`.
///
/// Errors (syntax, undefined attributes, `raise_exception`) are `GLMError` with code `.template` and a message
/// of the form `Kind: message (template line L, column C)`, where Kind is jinja2's exception name.
public struct JinjaTemplate: @unchecked Sendable {
    // The syntax tree is immutable after parsing, so sharing it across threads is safe.
    private let body: [Stmt]
    private let source: TemplateSource
    public let limits: RenderLimits

    public init(source: String, limits: RenderLimits = RenderLimits()) throws(GLMError) {
        self.source = TemplateSource(source)
        self.limits = limits
        body = try JinjaParser.parse(self.source, maxDepth: limits.maxNestingDepth)
    }

    /// Renders with the given variables. A variable is defined exactly when it is a key of `variables`;
    /// a JSON null becomes Python `None` (defined, falsy).
    /// `now` fixes what `strftime_now` formats (seconds since the epoch, shown in UTC); nil means
    /// `SOURCE_DATE_EPOCH` if set, else the real clock (`TemplateClock.resolve`).
    public func render(_ variables: JSONObject, now: Int64? = nil) throws(GLMError) -> String {
        var values: [(String, Value)] = []
        for (k, v) in variables { values.append((k, Value(json: v))) }
        return try render(values: values, now: now)
    }

    func render(values: [(String, Value)], now: Int64?) throws(GLMError) -> String {
        if let now { try TemplateClock.validate(epochSeconds: now) }
        return try Interpreter(source: source, limits: limits, now: now).render(body, variables: values)
    }
}
