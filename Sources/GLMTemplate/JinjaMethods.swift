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
            case "count": return .int(items.filter { pythonEqual($0, args.positional.first ?? .none) }.count)
            case "index":
                guard let target = args.positional.first, let i = items.firstIndex(where: { pythonEqual($0, target) }) else {
                    throw error("ValueError", "value is not in list")
                }
                return .int(i)
            case "copy": return .list(items)
            default: break
            }
        default: break
        }
        throw error("AttributeError", "'\(receiver.typeName)' object has no attribute '\(name)'")
    }

    private func dictMethod(_ d: PyDict, _ name: String, _ args: Arguments) throws(GLMError) -> Value {
        switch name {
        case "items": return .iterator(IteratorValue(items: d.pairs.map { .tuple([$0.0, $0.1]) }, kind: .dictItems))
        case "keys": return .iterator(IteratorValue(items: d.keys, kind: .dictKeys))
        case "values": return .iterator(IteratorValue(items: d.values, kind: .dictValues))
        case "get":
            guard let key = args.value(0, "key") else { throw typeError("get expected at least 1 argument, got 0") }
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
            return .string(pythonStrip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let separator = try stringParameter(args, 0, "sep", method: name)
            if separator == "" { throw error("ValueError", "empty separator") }
            let maxSplit = try intParameter(args, 1, "maxsplit", default: -1)
            let parts = name == "split" ? pythonSplit(s, separator: separator, maxSplit: maxSplit)
                : pythonRSplit(s, separator: separator, maxSplit: maxSplit)
            return .list(parts.map { .string($0) })
        case "splitlines":
            return .list(pythonSplitLines(s, keepEnds: args.value(0, "keepends")?.isTruthy ?? false).map { .string($0) })
        case "startswith", "endswith":
            let candidates = try affix(args, method: name)
            guard let text = try window(s, args, from: 1) else { return .bool(false) }
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
            try checkReplacement(s, old, new)
            let result = pythonReplace(s, old, new, count: try intParameter(args, 2, "count", default: -1))
            try checkSize(result)
            return .string(result)
        case "upper": return .string(pythonUpper(s))
        case "lower", "casefold": return .string(pythonLower(s))
        case "title": return .string(pythonTitle(s))
        case "capitalize": return .string(pythonCapitalize(s))
        case "swapcase":
            var out = ""
            for scalar in s.unicodeScalars {
                let p = scalar.properties
                out += p.isLowercase ? p.uppercaseMapping : (p.isUppercase ? p.lowercaseMapping : String(scalar))
            }
            return .string(out)
        case "find", "rfind", "index", "rindex", "count":
            guard let needle = args.positional.first?.stringValue else { throw typeError("must be str, not \(args.positional.first?.typeName ?? "nothing")") }
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
            for (i, item) in try iterate(iterable).enumerated() {
                guard let t = item.stringValue else { throw typeError("sequence item \(i): expected str instance, \(item.typeName) found") }
                parts.append(t)
            }
            let result = parts.joined(separator: s)
            try checkSize(result)
            return .string(result)
        case "center", "ljust", "rjust":
            let width = try intParameter(args, 0, "width", default: 0)
            try checkCount(width)
            let fill = try stringParameter(args, 1, "fillchar", method: name) ?? " "
            let margin = max(width, 0) - pythonLength(s)
            guard margin > 0 else { return .string(s) }
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: margin))
            case "rjust": return .string(String(repeating: fill, count: margin) + s)
            default:
                let left = margin / 2 + (margin & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: margin - left))
            }
        case "zfill":
            let width = try intParameter(args, 0, "width", default: 0)
            try checkCount(width)
            let margin = max(width, 0) - pythonLength(s)
            guard margin > 0 else { return .string(s) }
            if let first = s.first, first == "-" || first == "+" {
                return .string(String(first) + String(repeating: "0", count: margin) + s.dropFirst())
            }
            return .string(String(repeating: "0", count: margin) + s)
        case "partition", "rpartition":
            guard let separator = args.positional.first?.stringValue, !separator.isEmpty else { throw error("ValueError", "empty separator") }
            let hay = Array(s.utf8), needle = Array(separator.utf8)
            let found = name == "partition" ? findBytes(hay, needle) : findLastBytes(hay, needle, end: hay.count)
            guard let at = found else {
                return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
            }
            return .tuple([.string(stringFromBytes(hay[..<at])), .string(separator), .string(stringFromBytes(hay[(at + needle.count)...]))])
        case "removeprefix", "removesuffix":
            guard let affix = args.positional.first?.stringValue else { throw typeError("\(name)() argument must be str") }
            let hay = Array(s.utf8), needle = Array(affix.utf8)
            if name == "removeprefix" && hay.starts(with: needle) { return .string(stringFromBytes(hay[needle.count...])) }
            if name == "removesuffix" && !needle.isEmpty && hay.count >= needle.count && hay.suffix(needle.count).elementsEqual(needle) {
                return .string(stringFromBytes(hay[..<(hay.count - needle.count)]))
            }
            return .string(s)
        case "format":
            return .string(try strFormat(s, args))
        case "isalnum", "isalpha", "isdigit", "isdecimal", "isnumeric", "isspace", "isascii", "isidentifier", "isprintable":
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
            default: return .bool(scalars.allSatisfy(isPythonSpace))
            }
        case "islower", "isupper":
            let cased = s.unicodeScalars.contains { $0.properties.isCased }
            return .bool(cased && (name == "islower" ? pythonLower(s) == s : pythonUpper(s) == s))
        case "istitle":
            return .bool(s.unicodeScalars.contains { $0.properties.isCased } && pythonTitle(s) == s)
        case "expandtabs":
            let size = try intParameter(args, 0, "tabsize", default: 8)
            let tabs = s.unicodeScalars.filter { $0 == "\t" }.count
            let (spacesBound, overflow) = tabs.multipliedReportingOverflow(by: max(0, size))
            try checkCount(overflow ? Int.max : spacesBound)
            try checkCount(s.utf8.count + spacesBound)
            var out = ""
            var column = 0
            for scalar in s.unicodeScalars {
                if scalar == "\t" {
                    let spaces = size > 0 ? size - column % size : 0
                    out += String(repeating: " ", count: spaces)
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

    /// Code points before the `start` argument of find/index (their results count from the string start).
    private func window(prefixOf s: String, _ args: Arguments) -> Int {
        guard args.positional.count > 1, case .int(var start) = args.positional[1] else { return 0 }
        let count = pythonLength(s)
        if start < 0 { start = max(0, start + count) }
        return min(start, count)
    }
}
