import GLMJSON
import GLMSupport

/// Bounds that keep a hostile template from exhausting time, memory or the stack. Exceeding one throws
/// `GLMError` with code `.limitExceeded`.
public struct RenderLimits: Sendable {
    /// Largest output, and largest string, list or dict a template may build: a string counts its UTF-8
    /// bytes, a list `MemoryLayout<Value>.stride` (24) bytes per item, a dict three times that per entry.
    public var maxOutputBytes = 64 << 20
    /// Work one render may do, in units of about one byte read or written: each operation is charged the
    /// bytes of the strings it reads and builds, 24 per list or dict element it touches, and 16 per statement
    /// and expression evaluated (see `Interpreter.charge`). It bounds time (spending this default takes
    /// about a second of one core or less, whatever the operations) and memory: what a render builds is
    /// charged when built, so all it builds together stays below about this many bytes.
    ///
    /// Real templates use a tiny fraction. GLM-4.7 with 100 messages and 20 tools (the template benchmark,
    /// a 20972-byte prompt) uses 168,595 units, 1/2370 of the budget; the largest of the 610 fixture renders
    /// (Tests/Fixtures/templates, 36 popular templates) uses 97,399. GLM-4.7 costs about 8 units per prompt
    /// byte, so the default admits prompts of some 50 MB, near `maxOutputBytes`. RenderBudgetTests renders
    /// every fixture within 1/1000 of the default.
    public var maxWorkUnits = 400_000_000
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
