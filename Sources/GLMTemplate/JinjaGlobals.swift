import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

// The global functions of transformers' chat-template environment: jinja2's `range`, `dict`, `namespace`,
// `joiner`, and transformers' `raise_exception` and `strftime_now`.

extension Interpreter {
    /// jinja2's sandbox refuses ranges longer than this (`MAX_RANGE`).
    static let maxRange = 100_000

    static func globalFunctions() -> [String: Value] {
        func builtin(_ name: String, _ body: @escaping (Interpreter, Arguments) throws(GLMError) -> Value) -> Value {
            .callable(Callable(.builtin(name, body)))
        }
        return [
            "range": builtin("range") { interpreter, args throws(GLMError) in try interpreter.range(args) },
            "dict": builtin("dict") { interpreter, args throws(GLMError) in .dict(try interpreter.makeDict(args, function: "dict")) },
            "namespace": builtin("namespace") { interpreter, args throws(GLMError) in
                let ns = Namespace()
                ns.attributes = try interpreter.makeDict(args, function: "namespace")
                for key in ns.attributes.keys {
                    if let name = key.stringValue, name.hasPrefix("_") {
                        throw interpreter.error("SecurityError", "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(name)). Please rename the attribute.")
                    }
                }
                interpreter.registerNamespace(ns)
                return .namespace(ns)
            },
            "raise_exception": builtin("raise_exception") { interpreter, args throws(GLMError) in
                let message = try args.value(0, "message").map { v throws(GLMError) in try interpreter.str(v) } ?? ""
                throw interpreter.error("TemplateError", message)
            },
            "strftime_now": builtin("strftime_now") { interpreter, args throws(GLMError) in
                guard let format = args.value(0, "format")?.stringValue else {
                    throw interpreter.typeError("strftime_now() argument must be str")
                }
                // strftime reads the format once per buffer size it tries (up to 5, the last of 64 KiB).
                try interpreter.charge(Interpreter.sum(Interpreter.product(5, format.utf8.count), 1 << 16))
                return .string(try TemplateClock.resolve(explicit: interpreter.now).format(format))
            },
            "joiner": builtin("joiner") { interpreter, args throws(GLMError) in
                let separator = try args.value(0, "sep").map { v throws(GLMError) in try interpreter.str(v) } ?? ", "
                final class State { var used = false }
                let state = State()
                return .callable(Callable(.builtin("joiner") { _, _ in
                    defer { state.used = true }
                    return .string(state.used ? separator : "")
                }))
            },
        ]
    }

    private func range(_ args: Arguments) throws(GLMError) -> Value {
        var numbers: [Int] = []
        for v in args.positional {
            switch v {
            case .int(let i): numbers.append(i)
            case .bool(let b): numbers.append(b ? 1 : 0)
            default: throw typeError("'\(v.typeName)' object cannot be interpreted as an integer")
            }
        }
        var start = 0, stop = 0, step = 1
        switch numbers.count {
        case 1: stop = numbers[0]
        case 2: start = numbers[0]; stop = numbers[1]
        case 3: start = numbers[0]; stop = numbers[1]; step = numbers[2]
        default: throw typeError("range expected 1 to 3 arguments, got \(numbers.count)")
        }
        if step == 0 { throw error("ValueError", "range() arg 3 must not be zero") }
        // Python's len(range(...)), computed without overflowing for extreme bounds.
        let noDistance: (partialValue: Int, overflow: Bool) = (0, false)
        let distance = step > 0 ? (stop > start ? stop.subtractingReportingOverflow(start) : noDistance)
            : (start > stop ? start.subtractingReportingOverflow(stop) : noDistance)
        let magnitude = step == Int.min ? Int.max : abs(step)
        let span = distance.overflow ? Int.max : (distance.partialValue == 0 ? 0 : (distance.partialValue - 1) / magnitude + 1)
        if span > Interpreter.maxRange {
            throw error("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(Interpreter.maxRange)).")
        }
        try reserve(elements: span)
        var values: [Value] = []
        values.reserveCapacity(span)
        var x = start
        for _ in 0..<span {
            values.append(.int(x))
            x = x &+ step
        }
        return .list(values)
    }

    /// Python's `dict(mapping_or_pairs, **kwargs)`.
    private func makeDict(_ args: Arguments, function: String) throws(GLMError) -> PyDict {
        var d = PyDict()
        if args.positional.count > 1 { throw typeError("\(function) expected at most 1 argument, got \(args.positional.count)") }
        if let source = args.positional.first {
            switch source {
            case .dict(let other): d = other
            case .namespace(let ns): d = ns.attributes
            default:
                let items = try iterate(source)
                try reserve(elements: items.count, bytesEach: Interpreter.entryBytes)
                for (i, item) in items.enumerated() {
                    try chargeKey(item.sequenceItems?.first ?? .none)
                    let pair = try iterate(item)
                    guard pair.count == 2 else {
                        throw error("ValueError", "dictionary update sequence element #\(i) has length \(pair.count); 2 is required")
                    }
                    guard d.set(pair[0], pair[1]) else { throw typeError("unhashable type: '\(pair[0].typeName)'") }
                }
            }
        }
        // Adding keywords copies the entries (and their index) once.
        if !args.keywords.isEmpty {
            try reserve(elements: Interpreter.sum(d.count, args.keywords.count), bytesEach: Interpreter.entryBytes)
        }
        for (k, v) in args.keywords {
            try charge(k.utf8.count)
            d.set(string: k, v)
        }
        return d
    }
}
