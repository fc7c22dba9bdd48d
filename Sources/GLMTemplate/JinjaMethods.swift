import GLMJSON
import GLMSupport

// Methods of Python's str, dict and list that templates call (`s.split(',')`, `d.items()`), as the immutable
// sandbox allows them: methods that would mutate a list or dict are refused with jinja2's SecurityError.

private let stringMethods: Set<String> = [
    "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
    "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
    "upper", "zfill", "expandtabs", "encode", "format_map", "isprintable", "maketrans", "translate",
]

/// (is a method, would mutate) for a dict attribute name. A switch: attribute access is hot and most names
/// (`m.role`, `m.content`) are not methods.
private func dictMethodKind(_ name: String) -> (Bool, Bool) {
    switch name {
    case "items", "keys", "values", "get", "copy", "fromkeys": return (true, false)
    case "clear", "pop", "popitem", "setdefault", "update": return (true, true)
    default: return (false, false)
    }
}

private func listMethodKind(_ name: String) -> (Bool, Bool) {
    switch name {
    case "count", "index", "copy": return (true, false)
    case "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort": return (true, true)
    default: return (false, false)
    }
}

extension Interpreter {
    /// The bound method `object.name`, if the object's Python type has one.
    func boundMethod(_ object: Value, _ name: String) -> Value? {
        let known: Bool
        var unsafe = false
        switch object {
        case .string, .markup: known = stringMethods.contains(name)
        case .dict: (known, unsafe) = dictMethodKind(name)
        case .list: (known, unsafe) = listMethodKind(name)
        case .tuple: known = name == "count" || name == "index"
        default: return nil
        }
        guard known else { return nil }
        if unsafe {
            return .undefined(Undefined(name: name, hint: "access to attribute \(pythonRepr(name)) of \(pythonRepr(object.typeName)) object is unsafe.", isUnsafe: true))
        }
        return .callable(Callable(.method(receiver: object, name: name)))
    }

    private func stringParameter(_ args: Arguments, _ index: Int, _ name: String, method: String) throws(GLMError) -> String? {
        guard let v = args.value(index, name), !v.isNone else { return nil }
        guard let s = v.stringValue else { throw typeError("\(method)() argument must be str or None, not \(v.typeName)") }
        return s
    }

    private func intParameter(_ args: Arguments, _ index: Int, _ name: String, default fallback: Int) throws(GLMError) -> Int {
        guard let v = args.value(index, name), !v.isNone else { return fallback }
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: throw typeError("'\(v.typeName)' object cannot be interpreted as an integer")
        }
    }

    func callMethod(_ receiver: Value, _ name: String, _ args: Arguments) throws(GLMError) -> Value {
        switch receiver {
        case .string(let s), .markup(let s): return try stringMethod(s, name, args)
        case .dict(let d): return try dictMethod(d, name, args)
        case .list(let items), .tuple(let items):
            switch name {
            case "count":
                let target = args.positional.first ?? .none
                var n = 0
                for item in items {
                    try charge(Interpreter.elementBytes)
                    if try equal(item, target) { n += 1 }
                }
                return .int(n)
            case "index":
                guard let target = args.positional.first else { throw error("ValueError", "value is not in list") }
                for (i, item) in items.enumerated() {
                    try charge(Interpreter.elementBytes)
                    if try equal(item, target) { return .int(i) }
                }
                throw error("ValueError", "value is not in list")
            case "copy": return .list(items)
            default: break
            }
        default: break
        }
        throw error("AttributeError", "'\(receiver.typeName)' object has no attribute '\(name)'")
    }

    private func dictMethod(_ d: PyDict, _ name: String, _ args: Arguments) throws(GLMError) -> Value {
        switch name {
        case "items":
            try charge(elements: Interpreter.product(3, d.count))
            return .iterator(IteratorValue(items: d.pairs.map { .tuple([$0.0, $0.1]) }, kind: .dictItems))
        case "keys":
            try charge(elements: d.count)
            return .iterator(IteratorValue(items: d.keys, kind: .dictKeys))
        case "values":
            try charge(elements: d.count)
            return .iterator(IteratorValue(items: d.values, kind: .dictValues))
        case "get":
            guard let key = args.value(0, "key") else { throw typeError("get expected at least 1 argument, got 0") }
            try chargeKey(key)
            if HashKey(key) == nil { throw typeError("unhashable type: '\(key.typeName)'") }
            return d.lookup(key) ?? args.value(1, "default") ?? .none
        case "copy": return .dict(d)
        default: throw error("AttributeError", "'dict' object attribute '\(name)' is not supported")
        }
    }

    private func affix(_ args: Arguments, method: String) throws(GLMError) -> [String] {
        guard let v = args.positional.first else { throw typeError("\(method)() takes at least 1 argument (0 given)") }
        if let s = v.stringValue { return [s] }
        if case .tuple(let items) = v {
            var out: [String] = []
            for item in items {
                guard let s = item.stringValue else { throw typeError("tuple for \(method) must only contain str, not \(item.typeName)") }
                out.append(s)
            }
            return out
        }
        throw typeError("\(method) first arg must be str or a tuple of str, not \(v.typeName)")
    }

    /// Resolves Python's optional `start`/`end` arguments to a code-point window of `s`.
    private func window(_ s: String, _ args: Arguments, from index: Int) throws(GLMError) -> String? {
        let startArg = args.positional.count > index ? args.positional[index] : Value.none
        let endArg = args.positional.count > index + 1 ? args.positional[index + 1] : Value.none
        if startArg.isNone && endArg.isNone { return s }
        // Decoded to code points, then the window copied.
        try charge(Interpreter.product(2, s.utf8.count))
        let scalars = Array(s.unicodeScalars)
        func clamp(_ v: Value, _ fallback: Int) throws(GLMError) -> Int {
            guard !v.isNone else { return fallback }
            guard case .int(var i) = v else { throw typeError("slice indices must be integers or None") }
            if i < 0 { i = max(0, i + scalars.count) }
            return min(i, scalars.count)
        }
        let start = try clamp(startArg, 0)
        let end = try clamp(endArg, scalars.count)
        guard start <= end else { return nil }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    private func stringMethod(_ s: String, _ name: String, _ args: Arguments) throws(GLMError) -> Value {
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try stringParameter(args, 0, "chars", method: name)
            return .string(try strip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let separator = try stringParameter(args, 0, "sep", method: name)
            if separator == "" { throw error("ValueError", "empty separator") }
            let maxSplit = try intParameter(args, 1, "maxsplit", default: -1)
            try reserveSplit(s, separator: separator, maxSplit: maxSplit)
            let parts = name == "split" ? pythonSplit(s, separator: separator, maxSplit: maxSplit)
                : pythonRSplit(s, separator: separator, maxSplit: maxSplit)
            return .list(parts.map { .string($0) })
        case "splitlines":
            // Decoded to code points, then copied into lines; at most one line per code point.
            try charge(Interpreter.product(6, s.utf8.count))
            let lines = pythonSplitLines(s, keepEnds: args.value(0, "keepends")?.isTruthy ?? false)
            try reserve(elements: lines.count)
            return .list(lines.map { .string($0) })
        case "startswith", "endswith":
            let candidates = try affix(args, method: name)
            guard let text = try window(s, args, from: 1) else { return .bool(false) }
            // Copied to bytes, then each candidate compared.
            try charge(text.utf8.count)
            for c in candidates { try charge(Interpreter.sum(c.utf8.count, Interpreter.stepUnits)) }
            let bytes = Array(text.utf8)
            for c in candidates {
                let needle = Array(c.utf8)
                if needle.count > bytes.count { continue }
                if name == "startswith" ? bytes.starts(with: needle) : bytes.suffix(needle.count).elementsEqual(needle) { return .bool(true) }
            }
            return .bool(false)
        case "replace":
            guard let old = args.value(0, "old")?.stringValue, let new = args.value(1, "new")?.stringValue else {
                throw typeError("replace() arguments must be str")
            }
            return .string(try replace(s, old, new, count: try intParameter(args, 2, "count", default: -1)))
        case "upper": return .string(try upper(s))
        case "lower", "casefold": return .string(try lower(s))
        case "title", "capitalize", "swapcase":
            // Every code point's Unicode properties are looked up, whatever the script.
            try charge(Interpreter.product(Interpreter.unicodeTextUnits, s.utf8.count))
            let result = unicodeCaseMethod(s, name)
            try checkSize(result)
            return .string(result)
        case "find", "rfind", "index", "rindex", "count":
            guard let needle = args.positional.first?.stringValue else { throw typeError("must be str, not \(args.positional.first?.typeName ?? "nothing")") }
            // Copies to bytes and a linear search; the code points before a match are counted.
            try charge(Interpreter.sum(Interpreter.product(3, s.utf8.count), Interpreter.product(2, needle.utf8.count)))
            let scalarsBefore = window(prefixOf: s, args)
            guard let text = try window(s, args, from: 1) else {
                if name == "count" { return .int(0) }
                if name.hasSuffix("index") { throw error("ValueError", "substring not found") }
                return .int(-1)
            }
            let hay = Array(text.utf8), pattern = Array(needle.utf8)
            if name == "count" {
                if pattern.isEmpty { return .int(pythonLength(text) + 1) }
                var n = 0, at = 0
                while let found = findBytes(hay, pattern, from: at) { n += 1; at = found + pattern.count }
                return .int(n)
            }
            let found = name.hasPrefix("r") ? findLastBytes(hay, pattern, end: hay.count) : findBytes(hay, pattern)
            guard let byteOffset = found else {
                if name.hasSuffix("index") { throw error("ValueError", "substring not found") }
                return .int(-1)
            }
            return .int(scalarsBefore + pythonLength(String(decoding: hay[..<byteOffset], as: UTF8.self)))
        case "join":
            guard let iterable = args.positional.first else { throw typeError("join() takes exactly one argument (0 given)") }
            var parts: [String] = []
            var total = 0
            let items = try iterate(iterable)
            try charge(elements: items.count)
            for (i, item) in items.enumerated() {
                guard let t = item.stringValue else { throw typeError("sequence item \(i): expected str instance, \(item.typeName) found") }
                total = Interpreter.sum(total, Interpreter.sum(t.utf8.count, i > 0 ? s.utf8.count : 0))
                parts.append(t)
            }
            // The separator repeats between every item: bound the result before building it.
            try reserve(bytes: total)
            return .string(parts.joined(separator: s))
        case "center", "ljust", "rjust":
            let width = try intParameter(args, 0, "width", default: 0)
            let fill = try stringParameter(args, 1, "fillchar", method: name) ?? " "
            // The fill may be any string here (Python wants one character): bound its repetitions too.
            try reserve(bytes: Interpreter.sum(Interpreter.product(max(width, 0), max(1, fill.utf8.count)), s.utf8.count))
            try charge(s.utf8.count)
            let margin = max(width, 0) - pythonLength(s)
            guard margin > 0 else { return .string(s) }
            switch name {
            case "ljust": return .string(s + repeatedText(fill, count: margin))
            case "rjust": return .string(repeatedText(fill, count: margin) + s)
            default:
                let left = margin / 2 + (margin & width & 1)
                return .string(repeatedText(fill, count: left) + s + repeatedText(fill, count: margin - left))
            }
        case "zfill":
            let width = try intParameter(args, 0, "width", default: 0)
            try reserve(bytes: Interpreter.sum(max(width, 0), s.utf8.count))
            try charge(s.utf8.count)
            let margin = max(width, 0) - pythonLength(s)
            guard margin > 0 else { return .string(s) }
            if let first = s.first, first == "-" || first == "+" {
                return .string(String(first) + repeatedText("0", count: margin) + s.dropFirst())
            }
            return .string(repeatedText("0", count: margin) + s)
        case "partition", "rpartition":
            guard let separator = args.positional.first?.stringValue, !separator.isEmpty else { throw error("ValueError", "empty separator") }
            try charge(Interpreter.sum(Interpreter.product(3, s.utf8.count), Interpreter.product(2, separator.utf8.count)))
            let hay = Array(s.utf8), needle = Array(separator.utf8)
            let found = name == "partition" ? findBytes(hay, needle) : findLastBytes(hay, needle, end: hay.count)
            guard let at = found else {
                return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
            }
            return .tuple([.string(stringFromBytes(hay[..<at])), .string(separator), .string(stringFromBytes(hay[(at + needle.count)...]))])
        case "removeprefix", "removesuffix":
            guard let affix = args.positional.first?.stringValue else { throw typeError("\(name)() argument must be str") }
            try charge(Interpreter.sum(Interpreter.product(3, s.utf8.count), Interpreter.product(2, affix.utf8.count)))
            let hay = Array(s.utf8), needle = Array(affix.utf8)
            if name == "removeprefix" && hay.starts(with: needle) { return .string(stringFromBytes(hay[needle.count...])) }
            if name == "removesuffix" && !needle.isEmpty && hay.count >= needle.count && hay.suffix(needle.count).elementsEqual(needle) {
                return .string(stringFromBytes(hay[..<(hay.count - needle.count)]))
            }
            return .string(s)
        case "format":
            return .string(try strFormat(s, args))
        case "isalnum", "isalpha", "isdigit", "isdecimal", "isnumeric", "isspace", "isascii", "isidentifier", "isprintable":
            try charge(Interpreter.product(Interpreter.unicodeTextUnits, s.utf8.count))
            let scalars = Array(s.unicodeScalars)
            if name == "isascii" { return .bool(scalars.allSatisfy { $0.isASCII }) }
            if name == "isprintable" { return .bool(scalars.allSatisfy(isPythonPrintable)) }
            guard !scalars.isEmpty else { return .bool(false) }
            switch name {
            case "isalpha": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic })
            case "isalnum": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
            case "isdigit": return .bool(scalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
            case "isdecimal": return .bool(scalars.allSatisfy { $0.properties.numericType == .decimal })
            case "isnumeric": return .bool(scalars.allSatisfy { $0.properties.numericType != nil })
            case "isidentifier":
                guard let first = scalars.first, first == "_" || first.properties.isXIDStart else { return .bool(false) }
                return .bool(scalars.dropFirst().allSatisfy { $0.properties.isXIDContinue })
            default: return .bool(scalars.allSatisfy(PythonString.isSpace))
            }
        case "islower", "isupper":
            try charge(Interpreter.product(Interpreter.unicodeTextUnits, s.utf8.count))
            guard s.unicodeScalars.contains(where: { $0.properties.isCased }) else { return .bool(false) }
            return .bool(try (name == "islower" ? lower(s) : upper(s)) == s)
        case "istitle":
            try charge(Interpreter.product(2 * Interpreter.unicodeTextUnits, s.utf8.count))
            return .bool(s.unicodeScalars.contains { $0.properties.isCased } && pythonTitle(s) == s)
        case "expandtabs":
            let size = try intParameter(args, 0, "tabsize", default: 8)
            try charge(Interpreter.product(2, s.utf8.count))
            let tabs = s.unicodeScalars.filter { $0 == "\t" }.count
            try reserve(bytes: Interpreter.sum(s.utf8.count, Interpreter.product(tabs, max(0, size))))
            var out = ""
            var column = 0
            for scalar in s.unicodeScalars {
                if scalar == "\t" {
                    let spaces = size > 0 ? size - column % size : 0
                    out += repeatedText(" ", count: spaces)
                    column += spaces
                } else {
                    out.unicodeScalars.append(scalar)
                    column = (scalar == "\n" || scalar == "\r") ? 0 : column + 1
                }
            }
            return .string(out)
        default:
            throw error("TemplateRuntimeError", "str.\(name)() is not supported by this engine")
        }
    }

    private func unicodeCaseMethod(_ s: String, _ name: String) -> String {
        switch name {
        case "title": return pythonTitle(s)
        case "capitalize": return pythonCapitalize(s)
        default:
            var out = ""
            for scalar in s.unicodeScalars {
                let p = scalar.properties
                out += p.isLowercase ? p.uppercaseMapping : (p.isUppercase ? p.lowercaseMapping : String(scalar))
            }
            return out
        }
    }

    /// Bounds a split's result before building it: at most one part per separator found (per two bytes when
    /// splitting on whitespace). Counting matches is a pass of its own, made only when the quick bound
    /// exceeds the size limit.
    private func reserveSplit(_ s: String, separator: String?, maxSplit: Int) throws(GLMError) {
        let bytes = s.utf8.count
        // Copied to bytes, searched, the parts copied out; splitting on whitespace tests every code point.
        let unitsPerByte = separator == nil ? Interpreter.unicodeTextUnits : 3
        try charge(Interpreter.sum(Interpreter.product(unitsPerByte, bytes), separator?.utf8.count ?? 0))
        var parts = bytes / max(1, separator?.utf8.count ?? 2) + 1
        if maxSplit >= 0 { parts = min(parts, Interpreter.sum(maxSplit, 1)) }
        if Interpreter.product(parts, Interpreter.elementBytes) > limits.maxOutputBytes {
            try charge(bytes)
            if let separator {
                let hay = Array(s.utf8), needle = Array(separator.utf8)
                var found = 0, at = 0
                while let next = findBytes(hay, needle, from: at) { found += 1; at = next + needle.count }
                parts = found + 1
            } else {
                parts = wordCount(s)
            }
            if maxSplit >= 0 { parts = min(parts, Interpreter.sum(maxSplit, 1)) }
        }
        try reserve(elements: parts)
    }

    /// Runs of non-whitespace in `s`.
    private func wordCount(_ s: String) -> Int {
        var count = 0
        var inWord = false
        for scalar in s.unicodeScalars {
            let space = PythonString.isSpace(scalar)
            if !space && !inWord { count += 1 }
            inWord = !space
        }
        return count
    }

    /// Code points before the `start` argument of find/index (their results count from the string start).
    private func window(prefixOf s: String, _ args: Arguments) -> Int {
        guard args.positional.count > 1, case .int(var start) = args.positional[1] else { return 0 }
        let count = pythonLength(s)
        if start < 0 { start = max(0, start + count) }
        return min(start, count)
    }
}
