import GLMJSON
import GLMSupport
/// Walks the syntax tree and produces the output, with jinja2's scoping (a fresh scope per loop iteration,
/// macros closing over their defining scope) and Python's value semantics. One interpreter serves one render.
final class Interpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    let source: TemplateSource
    let limits: RenderLimits
    /// The caller's instant for `strftime_now` (nil: SOURCE_DATE_EPOCH or the real clock, resolved when a
    /// template reads the clock, so a malformed SOURCE_DATE_EPOCH fails only the templates that use it).
    let now: Int64?
    /// Byte offset of the statement being executed, for error positions.
    var offset = 0
    private var iterations = 0
    private var callDepth = 0
    private var loopDepth0 = 0
    /// Stack address at the start of the render; recursion is measured from it.
    private var stackBase: UInt = 0
    /// Frames holding macros and namespaces form reference cycles (a macro closes over the frame that holds
    /// it); they are emptied after the render so nothing leaks.
    private var framesToClear: [Frame] = []
    private var namespacesToClear: [Namespace] = []

    init(source: TemplateSource, limits: RenderLimits, now: Int64?) {
        self.source = source
        self.limits = limits
        self.now = now
    }

    func render(_ body: [Stmt], variables: [(String, Value)]) throws(GLMError) -> String {
        stackBase = Interpreter.stackAddress()
        let globals = Frame(parent: nil)
        for (name, value) in Interpreter.globalFunctions() { globals.set(name, value) }
        let top = Frame(parent: globals)
        for (name, value) in variables { top.set(name, value) }
        framesToClear.append(top)
        defer {
            for frame in framesToClear { frame.removeAll() }
            for ns in namespacesToClear { ns.attributes = PyDict() }
        }
        var out = ""
        _ = try execute(body, top, &out)
        return out
    }

    // MARK: - Errors

    func error(_ kind: String, _ message: String) -> GLMError {
        let (line, column) = source.position(of: offset)
        return .template("\(kind): \(message) (template line \(line), column \(column))")
    }

    func typeError(_ message: String) -> GLMError { error("TypeError", message) }

    func undefinedError(_ u: Undefined) -> GLMError {
        error(u.isUnsafe ? "SecurityError" : "UndefinedError", u.message)
    }

    /// Fails if `value` is undefined (the operations jinja2's `Undefined` refuses).
    func requireDefined(_ value: Value) throws(GLMError) {
        if case .undefined(let u) = value { throw undefinedError(u) }
    }

    // MARK: - Limits

    /// Units of work charged so far (`RenderLimits.maxWorkUnits`).
    private(set) var workUnits = 0

    /// Work units per statement or expression evaluated, and per list or dict element touched: about the
    /// bytes such a step reads or writes (a `Value` is 24 bytes).
    static let stepUnits = 16
    static let elementBytes = MemoryLayout<Value>.stride
    /// A dict entry: key, value and its slot in the hash index.
    static let entryBytes = 3 * MemoryLayout<Value>.stride
    /// Extra units per byte for text operations that look up Unicode properties per code point (case
    /// mapping, title, `is...` tests outside ASCII): measured several times slower than a plain copy.
    static let unicodeUnitsPerByte = 8

    /// Charges `units` of work to the render; fails once the render has done more than
    /// `RenderLimits.maxWorkUnits`. The one check every bounded operation goes through, so it stays an add
    /// and a compare.
    @inline(__always)
    func charge(_ units: Int) throws(GLMError) {
        if units > limits.maxWorkUnits &- workUnits { throw workExceeded() }
        workUnits &+= units
    }

    /// Charges for touching `count` list or dict elements.
    @inline(__always)
    func charge(elements count: Int) throws(GLMError) {
        let (units, overflow) = count.multipliedReportingOverflow(by: Interpreter.elementBytes)
        try charge(overflow ? Int.max : units)
    }

    /// Work left before `maxWorkUnits`.
    var remainingWork: Int { limits.maxWorkUnits &- workUnits }

    func workExceeded() -> GLMError {
        limitError("template did more than \(limits.maxWorkUnits) units of work (RenderLimits.maxWorkUnits; a unit is about one byte read or written)")
    }

    /// A `.limitExceeded` error at the current statement, positioned as `error` positions template errors.
    func limitError(_ message: String) -> GLMError {
        let (line, column) = source.position(of: offset)
        return GLMError(.limitExceeded, "\(message) (template line \(line), column \(column))")
    }

    func checkSize(_ s: String) throws(GLMError) {
        if s.utf8.count > limits.maxOutputBytes { throw sizeExceeded(s.utf8.count) }
    }

    func sizeExceeded(_ bytes: Int) -> GLMError {
        limitError("template value or output of \(bytes == Int.max ? "more than \(limits.maxOutputBytes)" : String(bytes)) bytes exceeds \(limits.maxOutputBytes) bytes (RenderLimits.maxOutputBytes)")
    }

    /// Before building a string of `bytes` bytes: checks it against `maxOutputBytes` and charges writing it.
    func reserve(bytes: Int) throws(GLMError) {
        if bytes > limits.maxOutputBytes { throw sizeExceeded(bytes) }
        try charge(bytes)
    }

    /// Before building a list of `count` items (`bytesEach` bytes of memory per item): checks its size against
    /// `maxOutputBytes` and charges writing it.
    func reserve(elements count: Int, bytesEach: Int = Interpreter.elementBytes) throws(GLMError) {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: bytesEach)
        try reserve(bytes: overflow ? Int.max : bytes)
    }

    /// `a * b`, saturating at Int.max (sizes computed from template integers).
    static func product(_ a: Int, _ b: Int) -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max : p
    }

    /// `a + b`, saturating at Int.max.
    static func sum(_ a: Int, _ b: Int) -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : s
    }

    private func countIteration() throws(GLMError) {
        iterations += 1
        if iterations > limits.maxIterations {
            throw limitError("template ran more than \(limits.maxIterations) loop iterations and calls (RenderLimits.maxIterations)")
        }
        try charge(Interpreter.stepUnits)
    }

    private static func stackAddress() -> UInt {
        var marker: UInt8 = 0
        return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
    }

    /// Refuses to recurse deeper once this render has used `stackBudgetBytes` of the thread's stack, so a
    /// hostile template fails with an error instead of overflowing the stack.
    private func checkStack() throws(GLMError) {
        let here = Interpreter.stackAddress()
        if stackBase > here && stackBase - here > UInt(limits.stackBudgetBytes) {
            throw limitError("template recursion too deep: the render used more than \(limits.stackBudgetBytes) bytes of stack (RenderLimits.stackBudgetBytes)")
        }
    }

    // MARK: - Statements

    func execute(_ body: [Stmt], _ frame: Frame, _ out: inout String) throws(GLMError) -> Flow {
        for stmt in body {
            let flow = try execute(stmt, frame, &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ stmt: Stmt, _ frame: Frame, _ out: inout String) throws(GLMError) -> Flow {
        try charge(Interpreter.stepUnits)
        switch stmt {
        case .text(let text):
            try append(text, to: &out)
        case .output(let expr, let at):
            offset = at
            try append(try str(try eval(expr, frame)), to: &out)
        case .conditional(let branches, let otherwise, let at):
            offset = at
            for (test, body) in branches {
                if try eval(test, frame).isTruthy { return try execute(body, frame, &out) }
            }
            return try execute(otherwise, frame, &out)
        case .forLoop(let loop, let at):
            offset = at
            let items = try iterate(try eval(loop.iterable, frame))
            try runLoop(loop, items: items, frame: frame, depth0: 0, &out)
        case .assign(let target, let expr, let at):
            offset = at
            try assign(target, try eval(expr, frame), frame)
        case .assignBlock(let target, let filters, let body, let at):
            offset = at
            var captured = ""
            _ = try execute(body, Frame(parent: frame), &captured)
            var value = Value.string(captured)
            offset = at
            for filter in filters { value = try applyFilter(filter, to: value, frame) }
            try assign(target, value, frame)
        case .macro(let definition, _):
            frame.set(definition.name, .callable(Callable(.macro(Macro(definition: definition, closure: frame, isCaller: false)))))
            framesToClear.append(frame)
        case .callBlock(let call, let caller, let at):
            offset = at
            guard case .call(let callee, let arguments) = call else { return .normal }
            let callerValue = Value.callable(Callable(.macro(Macro(definition: caller, closure: frame, isCaller: true))))
            var args = try evalArguments(arguments, frame)
            args.keywords.append(("caller", callerValue))
            let result = try callValue(try eval(callee, frame), args)
            try append(try str(result), to: &out)
        case .filterBlock(let filters, let body, let at):
            var captured = ""
            _ = try execute(body, Frame(parent: frame), &captured)
            offset = at
            var value = Value.string(captured)
            for filter in filters { value = try applyFilter(filter, to: value, frame) }
            try append(try str(value), to: &out)
        case .with(let assignments, let body, let at):
            offset = at
            let inner = Frame(parent: frame)
            for (target, expr) in assignments { try assign(target, try eval(expr, frame), inner) }
            return try execute(body, inner, &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .scope(let body):
            return try execute(body, Frame(parent: frame), &out)
        }
        return .normal
    }

    /// Appends to the output (or a captured block), charging the copy and bounding the size.
    @inline(__always)
    func append(_ text: String, to out: inout String) throws(GLMError) {
        try charge(text.utf8.count)
        out += text
        try checkSize(out)
    }

    private func runLoop(_ loop: ForLoop, items allItems: [Value], frame: Frame, depth0: Int, _ out: inout String) throws(GLMError) {
        var items = allItems
        if let condition = loop.condition {
            items = []
            for item in allItems {
                try countIteration()
                let probe = Frame(parent: frame)
                try assign(loop.target, item, probe)
                if try eval(condition, probe).isTruthy { items.append(item) }
            }
        }
        if items.isEmpty {
            _ = try execute(loop.elseBody, Frame(parent: frame), &out)
            return
        }
        var recurse: ((Value) throws(GLMError) -> String)? = nil
        if loop.isRecursive {
            recurse = { [unowned self] (value: Value) throws(GLMError) -> String in
                try self.checkStack()
                self.callDepth += 1
                defer { self.callDepth -= 1 }
                if self.callDepth > self.limits.maxCallDepth {
                    throw self.limitError("template recursion deeper than \(self.limits.maxCallDepth) levels (RenderLimits.maxCallDepth)")
                }
                var nested = ""
                try self.runLoop(loop, items: try self.iterate(value), frame: frame, depth0: depth0 + 1, &nested)
                return nested
            }
        }
        let state = LoopState(items: items, depth0: depth0, recurse: recurse)
        for (i, item) in items.enumerated() {
            try countIteration()
            state.index0 = i
            let iterationFrame = Frame(parent: frame)
            iterationFrame.set("loop", .loop(state))
            try assign(loop.target, item, iterationFrame)
            if try execute(loop.body, iterationFrame, &out) == .breakLoop { break }
        }
    }

    func assign(_ target: AssignTarget, _ value: Value, _ frame: Frame) throws(GLMError) {
        switch target {
        case .name(let name):
            // A scope is scanned linearly: charge the names passed.
            try charge(frame.count)
            frame.set(name, value)
        case .tuple(let targets):
            let items = try iterate(value)
            if items.count < targets.count {
                throw error("ValueError", "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            if items.count > targets.count {
                throw error("ValueError", "too many values to unpack (expected \(targets.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, frame) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let ns) = frame.lookup(name) ?? .undefinedName(name) else {
                throw error("TemplateRuntimeError", "cannot assign attribute on non-namespace object")
            }
            if attribute.hasPrefix("_") {
                throw error("SecurityError", "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(attribute)). Please rename the attribute.")
            }
            // Namespaces are the only way to carry a value from one loop iteration to the next, hence the only
            // way to nest values without bound ({% set ns.x = [ns.x] %}); deep values would overflow the
            // stack when printed or freed. The walk is charged: a value can share one big list many times.
            var budget = remainingWork / Interpreter.elementBytes
            let tooDeep = nestingExceeds(value, limits.maxValueDepth, budget: &budget)
            try charge(elements: remainingWork / Interpreter.elementBytes - budget)
            if budget < 0 { throw workExceeded() }
            if tooDeep {
                throw limitError("template value nested deeper than \(limits.maxValueDepth) levels (RenderLimits.maxValueDepth)")
            }
            ns.attributes.set(string: attribute, value)
        }
    }

    func registerNamespace(_ ns: Namespace) { namespacesToClear.append(ns) }

    /// Whether `value` nests deeper than `remaining` levels; `budget` counts down the elements visited and
    /// the walk gives up (returning false) once it is negative.
    private func nestingExceeds(_ value: Value, _ remaining: Int, budget: inout Int) -> Bool {
        if remaining < 0 { return true }
        switch value {
        case .list(let items), .tuple(let items): return nestingExceeds(items, remaining, budget: &budget)
        case .iterator(let it): return nestingExceeds(it.items, remaining, budget: &budget)
        case .dict(let d):
            for (_, v) in d.pairs {
                budget -= 1
                if budget < 0 { return false }
                if nestingExceeds(v, remaining - 1, budget: &budget) { return true }
            }
            return false
        default: return false
        }
    }

    private func nestingExceeds(_ items: [Value], _ remaining: Int, budget: inout Int) -> Bool {
        for item in items {
            budget -= 1
            if budget < 0 { return false }
            if nestingExceeds(item, remaining - 1, budget: &budget) { return true }
        }
        return false
    }

    // MARK: - Expressions

    func eval(_ expr: Expr, _ frame: Frame) throws(GLMError) -> Value {
        try charge(Interpreter.stepUnits)
        switch expr {
        case .constant(let v):
            return v
        case .name(let name):
            var scanned = 0
            let value = frame.lookup(name, scanned: &scanned)
            try charge(scanned)
            return value ?? .undefinedName(name)
        case .list(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try eval(item, frame)) }
            return .list(values)
        case .tuple(let items):
            var values: [Value] = []
            for item in items { values.append(try eval(item, frame)) }
            return .tuple(values)
        case .dict(let pairs):
            var dict = PyDict()
            for (k, v) in pairs {
                let key = try eval(k, frame)
                try chargeKey(key)
                guard dict.set(key, try eval(v, frame)) else { throw typeError("unhashable type: '\(key.typeName)'") }
            }
            return .dict(dict)
        case .attribute(let objectExpr, let name):
            return try getAttribute(try eval(objectExpr, frame), name)
        case .item(let objectExpr, let keyExpr):
            let object = try eval(objectExpr, frame)
            return try getItem(object, try eval(keyExpr, frame))
        case .slice(let objectExpr, let start, let stop, let step):
            let object = try eval(objectExpr, frame)
            return try slice(object, start: try start.map { e throws(GLMError) in try eval(e, frame) },
                             stop: try stop.map { e throws(GLMError) in try eval(e, frame) },
                             step: try step.map { e throws(GLMError) in try eval(e, frame) })
        case .negate(let operand):
            return try negate(try eval(operand, frame))
        case .plus(let operand):
            let v = try eval(operand, frame)
            try requireDefined(v)
            switch v {
            case .int, .float, .bigInt: return v
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw typeError("bad operand type for unary +: '\(v.typeName)'")
            }
        case .not(let operand):
            return .bool(!(try eval(operand, frame).isTruthy))
        case .binary(let op, let l, let r):
            let left = try eval(l, frame)
            return try binary(op, left, try eval(r, frame))
        case .concat(let items):
            var s = ""
            for item in items { try append(try str(try eval(item, frame)), to: &s) }
            return .string(s)
        case .and(let l, let r):
            let left = try eval(l, frame)
            return left.isTruthy ? try eval(r, frame) : left
        case .or(let l, let r):
            let left = try eval(l, frame)
            return left.isTruthy ? left : try eval(r, frame)
        case .compare(let first, let operations):
            var left = try eval(first, frame)
            for (op, rightExpr) in operations {
                let right = try eval(rightExpr, frame)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if try eval(test, frame).isTruthy { return try eval(then, frame) }
            if let otherwise { return try eval(otherwise, frame) }
            let line = source.line(of: offset)
            return .undefined(Undefined(name: "", hint: "the inline if-expression on line \(line) evaluated to false and no else section was defined."))
        case .filter(let operand, let call):
            return try applyFilter(call, to: try eval(operand, frame), frame)
        case .test(let operand, let call, let negated):
            let result = try applyTest(call, to: try eval(operand, frame), frame)
            return .bool(negated ? !result : result)
        case .call(let calleeExpr, let arguments):
            let callee = try eval(calleeExpr, frame)
            return try callValue(callee, try evalArguments(arguments, frame))
        }
    }

    func evalArguments(_ arguments: CallArguments, _ frame: Frame) throws(GLMError) -> Arguments {
        var args = Arguments()
        for e in arguments.positional { args.positional.append(try eval(e, frame)) }
        for (k, e) in arguments.keywords { args.keywords.append((k, try eval(e, frame))) }
        if let star = arguments.star {
            let items = try iterate(try eval(star, frame))
            try charge(elements: items.count)
            args.positional += items
        }
        if let doubleStar = arguments.doubleStar {
            guard case .dict(let d) = try eval(doubleStar, frame) else { throw typeError("argument after ** must be a mapping") }
            try charge(elements: d.count)
            for (k, v) in d.pairs {
                guard let key = k.stringValue else { throw typeError("keywords must be strings") }
                args.keywords.append((key, v))
            }
        }
        return args
    }

    // MARK: - Calls

    func callValue(_ callee: Value, _ args: Arguments) throws(GLMError) -> Value {
        switch callee {
        case .callable(let c):
            switch c.kind {
            case .macro(let macro): return try callMacro(macro, args)
            case .builtin(_, let function): return try function(self, args)
            case .method(let receiver, let name): return try callMethod(receiver, name, args)
            }
        case .loop(let state):
            guard let recurse = state.recurse else {
                throw typeError("Tried to call non recursive loop.  Maybe you forgot the 'recursive' modifier.")
            }
            guard args.positional.count == 1 else { throw typeError("loop() takes exactly one argument") }
            return .string(try recurse(args.positional[0]))
        case .undefined(let u):
            throw undefinedError(u)
        default:
            throw typeError("'\(callee.typeName)' object is not callable")
        }
    }

    private func callMacro(_ macro: Macro, _ args: Arguments) throws(GLMError) -> Value {
        let definition = macro.definition
        try countIteration()
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > limits.maxCallDepth {
            throw limitError("template macro calls nested deeper than \(limits.maxCallDepth) levels (RenderLimits.maxCallDepth)")
        }
        try checkStack()
        let savedOffset = offset
        defer { offset = savedOffset }

        let frame = Frame(parent: macro.closure)
        let parameters = definition.parameters
        if args.positional.count > parameters.count && !definition.catchesVarargs {
            throw typeError("macro '\(definition.name)' takes not more than \(parameters.count) argument(s)")
        }
        var extraKeywords = PyDict()
        for (key, value) in args.keywords {
            if let i = parameters.firstIndex(of: key) {
                if i < args.positional.count {
                    throw typeError("macro '\(definition.name)' got multiple values for argument '\(key)'")
                }
                continue
            }
            if key == "caller" && definition.catchesCaller {
                frame.set("caller", value)
                continue
            }
            guard definition.catchesKwargs else {
                throw typeError("macro '\(definition.name)' takes no keyword argument '\(key)'")
            }
            extraKeywords.set(string: key, value)
        }
        let firstDefault = parameters.count - definition.defaults.count
        for (i, name) in parameters.enumerated() {
            if i < args.positional.count {
                frame.set(name, args.positional[i])
            } else if let value = args.keyword(name) {
                frame.set(name, value)
            } else if i >= firstDefault {
                offset = savedOffset
                frame.set(name, try eval(definition.defaults[i - firstDefault], frame))
            } else {
                frame.set(name, .undefined(Undefined(name: name, hint: "parameter \(pythonRepr(name)) was not provided")))
            }
        }
        // Binding scans the parameter list once per argument.
        try charge(Interpreter.product(args.positional.count + args.keywords.count + 1, parameters.count + 1))
        frame.set("varargs", .tuple(args.positional.count > parameters.count ? Array(args.positional[parameters.count...]) : []))
        frame.set("kwargs", .dict(extraKeywords))
        if definition.catchesCaller && frame.local("caller") == nil {
            frame.set("caller", .undefined(Undefined(name: "caller", hint: "No caller defined")))
        }
        var out = ""
        _ = try execute(definition.body, frame, &out)
        return .string(out)
    }

    // MARK: - Attribute and item access (jinja2's sandboxed getattr/getitem)

    func getAttribute(_ object: Value, _ name: String) throws(GLMError) -> Value {
        if case .undefined(let u) = object { throw undefinedError(u) }
        try charge(name.utf8.count)
        if name.hasPrefix("__") {
            return .undefined(Undefined(name: name, hint: "access to attribute \(pythonRepr(name)) of \(pythonRepr(object.typeName)) object is unsafe.", isUnsafe: true))
        }
        if let method = boundMethod(object, name) { return method }
        switch object {
        case .dict(let d):
            if let v = d[string: name] { return v }
        case .namespace(let ns):
            if let v = ns.attributes[string: name] { return v }
        case .loop(let state):
            if let v = loopAttribute(state, name) { return v }
        case .int, .bool, .bigInt, .float:
            let isFloat: Bool = { if case .float = object { return true } else { return false } }()
            switch name {
            case "real": return isFloat ? object : (try binary(.add, object, .int(0)))
            case "imag": return isFloat ? .float(0) : .int(0)
            case "numerator" where !isFloat: return try binary(.add, object, .int(0))
            case "denominator" where !isFloat: return .int(1)
            default: break
            }
        default:
            break
        }
        return .undefined(Undefined(name: name, ownerType: object.objectTypeRepr))
    }

    func getItem(_ object: Value, _ key: Value) throws(GLMError) -> Value {
        if case .undefined(let u) = object { throw undefinedError(u) }
        try chargeKey(key)
        switch object {
        case .dict(let d):
            // An unhashable key is a TypeError, which jinja2's getitem turns into undefined.
            if let v = d.lookup(key) { return v }
        case .list(let items), .tuple(let items):
            if let i = intIndex(key) {
                let j = i < 0 ? i + items.count : i
                if j >= 0 && j < items.count { return items[j] }
            }
        case .string(let s), .markup(let s):
            if let i = intIndex(key) {
                try charge(s.utf8.count)
                let scalars = s.unicodeScalars
                let count = pythonLength(s)
                let j = i < 0 ? i + count : i
                if j >= 0 && j < count { return .string(String(scalars[scalars.index(scalars.startIndex, offsetBy: j)])) }
            }
        case .namespace(let ns):
            if case .string(let name) = key, let v = ns.attributes[string: name] { return v }
        case .loop(let state):
            if case .string(let name) = key, let v = loopAttribute(state, name) { return v }
        default:
            break
        }
        if case .string(let name) = key {
            if name.hasPrefix("__") {
                return .undefined(Undefined(name: name, hint: "access to attribute \(pythonRepr(name)) of \(pythonRepr(object.typeName)) object is unsafe.", isUnsafe: true))
            }
            if let method = boundMethod(object, name) { return method }
            return .undefined(Undefined(name: name, ownerType: object.objectTypeRepr))
        }
        return .undefined(Undefined(name: try repr(key), ownerType: object.objectTypeRepr, isElement: true))
    }

    private func intIndex(_ key: Value) -> Int? {
        switch key {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    private func loopAttribute(_ state: LoopState, _ name: String) -> Value? {
        let count = state.items.count
        let i = state.index0
        switch name {
        case "index": return .int(i + 1)
        case "index0": return .int(i)
        case "revindex": return .int(count - i)
        case "revindex0": return .int(count - i - 1)
        case "first": return .bool(i == 0)
        case "last": return .bool(i == count - 1)
        case "length": return .int(count)
        case "depth": return .int(state.depth0 + 1)
        case "depth0": return .int(state.depth0)
        case "previtem":
            return i > 0 ? state.items[i - 1] : .undefined(Undefined(name: "previtem", hint: "there is no previous item"))
        case "nextitem":
            return i + 1 < count ? state.items[i + 1] : .undefined(Undefined(name: "nextitem", hint: "there is no next item"))
        case "cycle":
            return .callable(Callable(.builtin("cycle") { interpreter, args throws(GLMError) in
                guard !args.positional.isEmpty else { throw interpreter.typeError("no items for cycling given") }
                return args.positional[state.index0 % args.positional.count]
            }))
        case "changed":
            return .callable(Callable(.builtin("changed") { interpreter, args throws(GLMError) in
                let changed = try state.lastChanged.map { last throws(GLMError) in !(try interpreter.equal(.list(last), .list(args.positional))) } ?? true
                state.lastChanged = args.positional
                return .bool(changed)
            }))
        default: return nil
        }
    }

    /// Python slicing of a list, tuple or str.
    private func slice(_ object: Value, start: Value?, stop: Value?, step: Value?) throws(GLMError) -> Value {
        if case .undefined(let u) = object { throw undefinedError(u) }
        func bound(_ v: Value?) -> Int?? {
            guard let v, !v.isNone else { return .some(nil) }
            return intIndex(v).map { .some($0) } ?? nil
        }
        guard let startIndex = bound(start), let stopIndex = bound(stop), let stepValue = bound(step) else {
            return .undefined(Undefined(name: "slice", ownerType: object.objectTypeRepr, isElement: true))
        }
        let stride = stepValue ?? 1
        if stride == 0 { throw error("ValueError", "slice step cannot be zero") }
        // Python's slice.indices(count): the first index picked and how many, computed without listing them.
        func picked(_ count: Int) -> (first: Int, count: Int) {
            var lower = 0, upper = count
            if stride < 0 { lower = -1; upper = count - 1 }
            func adjust(_ v: Int?, _ fallback: Int) -> Int {
                guard var x = v else { return fallback }
                if x < 0 { x += count; if x < lower { x = lower } } else if x > upper { x = upper }
                return x
            }
            let s = adjust(startIndex, stride > 0 ? lower : upper)
            let e = adjust(stopIndex, stride > 0 ? upper : lower)
            let span = stride > 0 ? e - s : s - e
            return (s, span > 0 ? (span - 1) / Int(clamping: stride.magnitude) + 1 : 0)
        }
        switch object {
        case .list(let items), .tuple(let items):
            let (first, count) = picked(items.count)
            try charge(elements: count)
            var result: [Value] = []
            result.reserveCapacity(count)
            for k in 0..<count { result.append(items[first + k * stride]) }
            if case .tuple = object { return .tuple(result) }
            return .list(result)
        case .string(let s), .markup(let s):
            // Walked by code point (no index table), then the slice copied.
            try charge(Interpreter.product(2, s.utf8.count))
            let (first, count) = picked(pythonLength(s))
            guard count > 0 else { return .string("") }
            let scalars = s.unicodeScalars
            if stride == 1 {
                let from = scalars.index(scalars.startIndex, offsetBy: first)
                let to = scalars.index(from, offsetBy: count)
                return .string(String(scalars[from..<to]))
            }
            // Every |stride|-th code point between the lowest and highest index picked, reversed for a
            // negative stride.
            let step = Int(clamping: stride.magnitude)
            let lowest = stride > 0 ? first : first + (count - 1) * stride
            let highest = lowest + (count - 1) * step
            var view = String.UnicodeScalarView()
            var position = 0
            for scalar in scalars {
                if position > highest { break }
                if position >= lowest && (position - lowest) % step == 0 { view.append(scalar) }
                position += 1
            }
            if stride < 0 { view = String.UnicodeScalarView(view.reversed()) }
            return .string(String(view))
        default:
            return .undefined(Undefined(name: "slice", ownerType: object.objectTypeRepr, isElement: true))
        }
    }

    // MARK: - Iteration

    func iterate(_ value: Value) throws(GLMError) -> [Value] {
        switch value {
        case .list(let items), .tuple(let items): return items
        case .dict(let d):
            try charge(elements: d.count)
            return d.keys
        case .string(let s), .markup(let s):
            try charge(s.utf8.count)
            try reserve(elements: pythonLength(s))
            return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case .loop(let state): return state.items
        case .iterator(let it): return it.items
        default: throw typeError("'\(value.typeName)' object is not iterable")
        }
    }
}
