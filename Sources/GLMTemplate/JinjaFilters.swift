import GLMJSON
import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

// jinja2's built-in filters (plus transformers' `tojson`), with their Python parameter names and defaults.

extension Interpreter {
    func applyFilter(_ call: FilterCall, to value: Value, _ frame: Frame) throws(GLMError) -> Value {
        let args = try evalArguments(call.arguments, frame)
        return try filter(call.name, value, args)
    }

    private func stringArgument(_ v: Value?, _ what: String) throws(GLMError) -> String? {
        guard let v, !v.isNone else { return nil }
        guard let s = v.stringValue else { throw typeError("\(what) must be a string, not \(v.typeName)") }
        return s
    }

    private func intArgument(_ v: Value?, _ what: String, default fallback: Int) throws(GLMError) -> Int {
        guard let v else { return fallback }
        try requireDefined(v)
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: throw typeError("'\(v.typeName)' object cannot be interpreted as an integer (\(what))")
        }
    }

    /// jinja2's `make_attrgetter`: dotted path, integer parts as indexes, subscript semantics per step.
    func attributeGetter(_ path: Value?, default fallback: Value? = nil, lowercase: Bool = false)
        throws(GLMError) -> (Value) throws(GLMError) -> Value {
        let parts: [Value]
        switch path {
        case nil, .some(Value.none): parts = []
        case .some(.string(let s)):
            try charge(Interpreter.sum(s.utf8.count, Interpreter.product(s.utf8.count / 2, Interpreter.elementBytes)))
            parts = s.split(separator: ".", omittingEmptySubsequences: false).map { p in Int(p).map { .int($0) } ?? .string(String(p)) }
        case .some(let other): parts = [other]
        }
        return { [unowned self] (item: Value) throws(GLMError) -> Value in
            var v = item
            for part in parts {
                v = try self.getItem(v, part)
                if v.isUndefined, let fallback { v = fallback; break }
            }
            if lowercase, case .string(let s) = v { return .string(try self.lower(s)) }
            return v
        }
    }

    /// `s.lower()`, charged by the bytes read and written.
    func lower(_ s: String) throws(GLMError) -> String { try caseMapped(s, upper: false) }

    /// `s.upper()`, charged by the bytes read and written.
    func upper(_ s: String) throws(GLMError) -> String { try caseMapped(s, upper: true) }

    private func caseMapped(_ s: String, upper: Bool) throws(GLMError) -> String {
        let bytes = s.utf8.count
        try charge(Interpreter.product(2, bytes))
        if bytesAll(s, { $0 < 0x80 }) { return upper ? s.uppercased() : s.lowercased() }
        // Outside ASCII every code point is a Unicode property lookup giving a small string.
        try charge(Interpreter.product(Interpreter.unicodeUnitsPerByte, bytes))
        let result = upper ? pythonUpperUnicode(s) : pythonLowerUnicode(s)
        try checkSize(result)
        return result
    }

    /// `str(value)` for an operation that reads it and writes about as much: charged `unitsPerByte` per byte.
    func text(_ value: Value, unitsPerByte: Int = 2) throws(GLMError) -> String {
        let s = try str(value)
        try charge(Interpreter.product(unitsPerByte, s.utf8.count))
        return s
    }

    /// Units per byte for text operations that look up Unicode properties of every code point.
    static let unicodeTextUnits = 2 + Interpreter.unicodeUnitsPerByte

    func filter(_ name: String, _ value: Value, _ args: Arguments) throws(GLMError) -> Value {
        switch name {
        case "abs":
            try requireDefined(value)
            switch value {
            case .int(let i): return i == Int.min ? .float(-Double(i)) : .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d): return .float(abs(d))
            case .bigInt(let t): return .bigInt(t.hasPrefix("-") ? String(t.dropFirst()) : t)
            default: throw typeError("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            guard let attribute = try stringArgument(args.value(0, "name"), "attribute name") else { throw typeError("attr() needs a name") }
            if case .undefined(let u) = value { throw undefinedError(u) }
            switch value {
            case .namespace, .loop: return try getAttribute(value, attribute)
            default:
                if attribute.hasPrefix("__") { return try getAttribute(value, attribute) }
                return boundMethod(value, attribute) ?? .undefined(Undefined(name: attribute, ownerType: value.objectTypeRepr))
            }
        case "batch":
            let size = try intArgument(args.value(0, "linecount"), "linecount", default: 1)
            guard size > 0 else { throw error("ValueError", "batch size must be positive") }
            let fill = args.value(1, "fill_with")
            if let fill, !fill.isNone { try reserve(elements: size) }
            let items = try iterate(value)
            // Each item is copied into a batch, and each batch into the result.
            try charge(elements: Interpreter.product(2, items.count))
            var result: [Value] = []
            var current: [Value] = []
            for item in items {
                current.append(item)
                if current.count == size { result.append(.list(current)); current = [] }
            }
            if !current.isEmpty {
                if let fill, !fill.isNone { while current.count < size { current.append(fill) } }
                result.append(.list(current))
            }
            return generator(result)
        case "capitalize":
            let result = pythonCapitalize(try text(value, unitsPerByte: Interpreter.unicodeTextUnits))
            try checkSize(result)
            return .string(result)
        case "center":
            let width = try intArgument(args.value(0, "width"), "width", default: 80)
            try reserve(bytes: max(width, 0))
            let s = try text(value)
            let margin = max(width, 0) - pythonLength(s)
            guard margin > 0 else { return .string(s) }
            let left = margin / 2 + (margin & width & 1)
            return .string(repeatedText(" ", count: left) + s + repeatedText(" ", count: margin - left))
        case "count", "length":
            return .int(try length(value))
        case "d", "default":
            let fallback = args.value(0, "default_value") ?? .string("")
            let boolean = args.value(1, "boolean")?.isTruthy ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort":
            guard case .dict(let d) = value else {
                try requireDefined(value)
                throw error("FilterArgumentError", "dictsort filter requires a mapping")
            }
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let by = try stringArgument(args.value(1, "by"), "by") ?? "key"
            let reverse = args.value(2, "reverse")?.isTruthy ?? false
            guard by == "key" || by == "value" else { throw error("FilterArgumentError", "You can only sort by either \"key\" or \"value\"") }
            try charge(elements: Interpreter.product(3, d.count))
            var pairs = d.pairs.map { Value.tuple([$0.0, $0.1]) }
            try sortValues(&pairs, reverse: reverse) { (v: Value) throws(GLMError) -> Value in
                guard case .tuple(let kv) = v, kv.count == 2 else { return v }
                let key = by == "key" ? kv[0] : kv[1]
                if !caseSensitive, case .string(let s) = key { return .string(try self.lower(s)) }
                return key
            }
            return .list(pairs)
        case "e", "escape":
            if case .markup = value { return value }
            return .markup(try escape(try str(value)))
        case "forceescape":
            return .markup(try escape(try str(value)))
        case "first":
            let items = try iterate(value)
            return items.first ?? .undefined(Undefined(name: "first", hint: "No first item, sequence was empty."))
        case "last":
            if case .iterator(let it) = value, !it.kind.isView { throw typeError("'\(it.kind.rawValue)' object is not reversible") }
            let items = try iterate(value)
            return items.last ?? .undefined(Undefined(name: "last", hint: "No last item, sequence was empty."))
        case "float":
            try requireDefined(value)
            let fallback = args.value(0, "default") ?? .float(0)
            switch value {
            case .float: return value
            case .int(let i): return .float(Double(i))
            case .bool(let b): return .float(b ? 1 : 0)
            case .bigInt(let t): return .float(Double(t) ?? 0)
            case .string(let s), .markup(let s):
                try charge(Interpreter.product(4, s.utf8.count))
                return parsePythonFloat(s).map { .float($0) } ?? fallback
            default: return fallback
            }
        case "int":
            try requireDefined(value)
            let fallback = args.value(0, "default") ?? .int(0)
            let base = try intArgument(args.value(1, "base"), "base", default: 10)
            switch value {
            case .int, .bigInt: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d): return Int(exactly: d.rounded(.towardZero)).map { .int($0) } ?? fallback
            case .string(let s), .markup(let s):
                try charge(Interpreter.product(8, s.utf8.count))
                if let i = parsePythonInt(s, base: base) { return i }
                if let d = parsePythonFloat(s), let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
                return fallback
            default: return fallback
            }
        case "format":
            let format = try str(value)
            if !args.positional.isEmpty && !args.keywords.isEmpty {
                throw error("FilterArgumentError", "can't handle positional and keyword arguments at the same time")
            }
            if !args.keywords.isEmpty {
                var d = PyDict()
                for (k, v) in args.keywords { d.set(string: k, v) }
                return .string(try percentFormat(format, .dict(d)))
            }
            return .string(try percentFormat(format, .tuple(args.positional)))
        case "groupby":
            let getter = try attributeGetter(args.value(0, "attribute"), default: args.value(1, "default"))
            let caseSensitive = args.value(2, "case_sensitive")?.isTruthy ?? false
            let keyOf = { [unowned self] (v: Value) throws(GLMError) -> Value in
                let k = try getter(v)
                if !caseSensitive, case .string(let s) = k { return .string(try self.lower(s)) }
                return k
            }
            var items = try iterate(value)
            try sortValues(&items, reverse: false, key: keyOf)
            try charge(elements: Interpreter.product(3, items.count))
            var groups: [Value] = []
            var currentKey: Value? = nil
            var currentDisplay: Value = .none
            var members: [Value] = []
            for item in items {
                let k = try keyOf(item)
                if let ck = currentKey, try equal(ck, k) {
                    members.append(item)
                } else {
                    if currentKey != nil { groups.append(.tuple([currentDisplay, .list(members)])) }
                    currentKey = k
                    currentDisplay = try getter(item)
                    members = [item]
                }
            }
            if currentKey != nil { groups.append(.tuple([currentDisplay, .list(members)])) }
            return .list(groups)
        case "indent":
            return .string(try indent(try str(value), args))
        case "items":
            if value.isUndefined { return .list([]) }
            guard case .dict(let d) = value else { throw typeError("Can only get item pairs from a mapping.") }
            try charge(elements: Interpreter.product(3, d.count))
            return generator(d.pairs.map { .tuple([$0.0, $0.1]) })
        case "join":
            let separator = try str(args.value(0, "d") ?? .string(""))
            var items = try iterate(value)
            try charge(elements: items.count)
            if let attribute = args.value(1, "attribute"), !attribute.isNone {
                let getter = try attributeGetter(attribute)
                var mapped: [Value] = []
                for item in items { mapped.append(try getter(item)) }
                items = mapped
            }
            var out = ""
            for (i, item) in items.enumerated() {
                if i > 0 { try append(separator, to: &out) }
                try append(try str(item), to: &out)
            }
            return .string(out)
        case "list":
            return .list(try iterate(value))
        case "lower":
            return .string(try lower(try str(value)))
        case "upper":
            return .string(try upper(try str(value)))
        case "map":
            var results: [Value] = []
            // jinja2's map/select/reject start with `if value:`, so None or "" give an empty generator.
            let items = value.isTruthy ? try iterate(value) : []
            try charge(elements: items.count)
            if let filterName = args.positional.first?.stringValue {
                guard JinjaParser.knownFilters.contains(filterName) else { throw error("TemplateRuntimeError", "No filter named '\(filterName)'.") }
                let rest = Arguments(Array(args.positional.dropFirst()), keywords: args.keywords)
                for item in items { results.append(try filter(filterName, item, rest)) }
            } else {
                let getter = try attributeGetter(args.keyword("attribute"), default: args.keyword("default"))
                for item in items { results.append(try getter(item)) }
            }
            return generator(results)
        case "max", "min":
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let getter = try attributeGetter(args.value(1, "attribute"), lowercase: !caseSensitive)
            let items = try iterate(value)
            try charge(elements: items.count)
            guard var best = items.first else {
                return .undefined(Undefined(name: name, hint: "No aggregated item, sequence was empty."))
            }
            var bestKey = try getter(best)
            for item in items.dropFirst() {
                let k = try getter(item)
                let c = try pythonCompare(k, bestKey)
                if name == "max" ? c > 0 : c < 0 { best = item; bestKey = k }
            }
            return best
        case "pprint":
            return .string(try repr(value))
        case "reject", "select", "rejectattr", "selectattr":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var positional = args.positional
            var getter: ((Value) throws(GLMError) -> Value)? = nil
            if byAttribute {
                guard !positional.isEmpty else { throw error("FilterArgumentError", "Missing parameter for attribute name") }
                getter = try attributeGetter(positional.removeFirst())
            }
            var testName: String? = nil
            if !positional.isEmpty {
                guard let t = positional.removeFirst().stringValue else { throw typeError("test name must be a string") }
                guard JinjaParser.knownTests.contains(t) else { throw error("TemplateRuntimeError", "No test named '\(t)'.") }
                testName = t
            }
            let testArgs = Arguments(positional, keywords: args.keywords)
            var results: [Value] = []
            let items = value.isTruthy ? try iterate(value) : []
            try charge(elements: items.count)
            for item in items {
                let subject = try getter?(item) ?? item
                let passed = try testName.map { t throws(GLMError) in try test(t, subject, testArgs) } ?? subject.isTruthy
                if passed == keep { results.append(item) }
            }
            return generator(results)
        case "replace":
            let old = try str(args.value(0, "old") ?? .string(""))
            let new = try str(args.value(1, "new") ?? .string(""))
            var count = -1
            if let c = args.value(2, "count"), !c.isNone { count = try intArgument(c, "count", default: -1) }
            let result = try replace(try str(value), old, new, count: count)
            if case .markup = value { return .markup(result) }
            return .string(result)
        case "reverse":
            switch value {
            case .string(let s), .markup(let s):
                try charge(Interpreter.product(Interpreter.unicodeTextUnits, s.utf8.count))
                return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed())))
            case .list(let items), .tuple(let items):
                try charge(elements: items.count)
                return .iterator(IteratorValue(items: items.reversed(), kind: .listReverseIterator))
            case .dict(let d):
                try charge(elements: Interpreter.product(2, d.count))
                return generator(d.keys.reversed())
            case .iterator(let it) where it.kind.isView:
                try charge(elements: it.items.count)
                return generator(it.items.reversed())
            default:
                let items = try iterate(value)
                try charge(elements: items.count)
                return .list(items.reversed())
            }
        case "round":
            try requireDefined(value)
            let precision = try intArgument(args.value(0, "precision"), "precision", default: 0)
            let method = try stringArgument(args.value(1, "method"), "method") ?? "common"
            guard let number = Number(value) else { throw typeError("type \(value.typeName) doesn't define __round__ method") }
            let scale = pow(10.0, Double(precision))
            let x = number.double * scale
            let r: Double
            switch method {
            case "common": r = Glibc.rint(x)
            case "ceil": r = x.rounded(.up)
            case "floor": r = x.rounded(.down)
            default: throw error("FilterArgumentError", "method must be common, ceil or floor")
            }
            return .float(r / scale)
        case "safe":
            if case .markup = value { return value }
            return .markup(try str(value))
        case "slice":
            let slices = try intArgument(args.value(0, "slices"), "slices", default: 1)
            guard slices > 0 else { throw error("ValueError", "slices must be positive") }
            try reserve(elements: slices)
            let fill = args.value(1, "fill_with")
            let items = try iterate(value)
            try charge(elements: Interpreter.product(2, items.count))
            let perSlice = items.count / slices
            let withExtra = items.count % slices
            var offsetIndex = 0
            var result: [Value] = []
            for s in 0..<slices {
                let start = offsetIndex + s * perSlice
                if s < withExtra { offsetIndex += 1 }
                let end = offsetIndex + (s + 1) * perSlice
                var part = Array(items[min(start, items.count)..<min(end, items.count)])
                if let fill, !fill.isNone, s >= withExtra { part.append(fill) }
                result.append(.list(part))
            }
            return generator(result)
        case "sort":
            let reverse = args.value(0, "reverse")?.isTruthy ?? false
            let caseSensitive = args.value(1, "case_sensitive")?.isTruthy ?? false
            let getter = try attributeGetter(args.value(2, "attribute"), lowercase: !caseSensitive)
            var items = try iterate(value)
            try sortValues(&items, reverse: reverse, key: getter)
            return .list(items)
        case "string":
            if case .markup = value { return value }
            return .string(try str(value))
        case "striptags":
            // A pass to drop the tags, one to split into words, one to join them.
            return .string(stripTags(try text(value, unitsPerByte: 6)))
        case "sum":
            let getter = try attributeGetter(args.value(0, "attribute"))
            var total = args.value(1, "start") ?? .int(0)
            let items = try iterate(value)
            try charge(elements: items.count)
            for item in items { total = try binary(.add, total, try getter(item)) }
            return total
        case "title":
            let result = jinjaTitle(try text(value, unitsPerByte: Interpreter.unicodeTextUnits))
            try checkSize(result)
            return .string(result)
        case "tojson":
            return .string(try toJSON(value, args))
        case "trim":
            let chars = try stringArgument(args.value(0, "chars"), "chars")
            return .string(try strip(try str(value), chars: chars, left: true, right: true))
        case "truncate":
            let s = try text(value, unitsPerByte: 3)
            // Clamped so the arithmetic below cannot overflow; every effect of a longer length is the same.
            let length = min(max(try intArgument(args.value(0, "length"), "length", default: 255), -(1 << 40)), 1 << 40)
            let killwords = args.value(1, "killwords")?.isTruthy ?? false
            let end = try text(args.value(2, "end") ?? .string("..."))
            let leeway = try intArgument(args.value(3, "leeway"), "leeway", default: 5)
            let scalars = Array(s.unicodeScalars)
            if leeway < 0 { throw error("AssertionError", "expected leeway >= 0, got \(leeway)") }
            if length < scalars.count && scalars.count - length <= leeway || length >= scalars.count { return .string(s) }
            let keep = max(0, length - pythonLength(end))
            var head = String(String.UnicodeScalarView(scalars[0..<min(keep, scalars.count)]))
            if !killwords, let space = head.lastIndex(of: " ") { head = String(head[..<space]) }
            return .string(head + end)
        case "unique":
            let caseSensitive = args.value(0, "case_sensitive")?.isTruthy ?? false
            let getter = try attributeGetter(args.value(1, "attribute"), lowercase: !caseSensitive)
            var seen: [Value] = []
            var result: [Value] = []
            for item in try iterate(value) {
                let k = try getter(item)
                var isNew = true
                for other in seen {
                    try charge(Interpreter.elementBytes)
                    if try equal(other, k) { isNew = false; break }
                }
                if isNew { seen.append(k); result.append(item) }
            }
            return generator(result)
        case "wordcount":
            var count = 0
            var inWord = false
            for scalar in try text(value, unitsPerByte: Interpreter.unicodeTextUnits).unicodeScalars {
                let isWord = scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "_"
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        default:
            if !JinjaParser.knownFilters.contains(name) { throw error("TemplateRuntimeError", "No filter named '\(name)' found.") }
            throw error("TemplateRuntimeError", "the '\(name)' filter is not supported by this engine")
        }
    }

    private func generator(_ items: [Value]) -> Value { .iterator(IteratorValue(items: items, kind: .generator)) }

    func length(_ value: Value) throws(GLMError) -> Int {
        switch value {
        case .string(let s), .markup(let s):
            try charge(s.utf8.count)
            return pythonLength(s)
        case .list(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        case .undefined: return 0
        case .loop(let state): return state.items.count
        case .iterator(let it) where it.kind.isView: return it.items.count
        default: throw typeError("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Stable merge sort with Python ordering of the keys.
    func sortValues(_ items: inout [Value], reverse: Bool, key: (Value) throws(GLMError) -> Value) throws(GLMError) {
        var keyed: [(Value, Value)] = []
        try charge(elements: Interpreter.product(2, items.count))
        for item in items { keyed.append((try key(item), item)) }
        var buffer = keyed
        func merge(_ lo: Int, _ mid: Int, _ hi: Int) throws(GLMError) {
            var i = lo, j = mid, k = lo
            while i < mid && j < hi {
                let c = try pythonCompare(keyed[j].0, keyed[i].0)
                // Reverse sorts keep equal items in their original order, as Python's sort(reverse=True) does.
                let takeRight = reverse ? c > 0 : c < 0
                if takeRight { buffer[k] = keyed[j]; j += 1 } else { buffer[k] = keyed[i]; i += 1 }
                k += 1
            }
            while i < mid { buffer[k] = keyed[i]; i += 1; k += 1 }
            while j < hi { buffer[k] = keyed[j]; j += 1; k += 1 }
            for t in lo..<hi { keyed[t] = buffer[t] }
        }
        var width = 1
        while width < keyed.count {
            // Each pass moves every pair twice (into the buffer and back).
            try charge(elements: Interpreter.product(4, keyed.count))
            var lo = 0
            while lo < keyed.count - width {
                try merge(lo, lo + width, min(lo + 2 * width, keyed.count))
                lo += 2 * width
            }
            width *= 2
        }
        items = keyed.map { $0.1 }
    }

    private func indent(_ text: String, _ args: Arguments) throws(GLMError) -> String {
        let widthValue = args.value(0, "width") ?? .int(4)
        let indention: String
        if let s = widthValue.stringValue { indention = s } else {
            let n = try intArgument(widthValue, "width", default: 4)
            try reserve(bytes: max(0, n))
            indention = repeatedText(" ", count: max(0, n))
        }
        let first = args.value(1, "first")?.isTruthy ?? false
        let blank = args.value(2, "blank")?.isTruthy ?? false
        let s = text + "\n"
        // Copied, decoded to code points, split into lines.
        try charge(Interpreter.product(6, s.utf8.count))
        var lines = pythonSplitLines(s)
        // The result repeats the indentation once per line: bound it before building.
        let (indentBytes, lineCount) = (indention.utf8.count, lines.count + 1)
        try reserve(bytes: Interpreter.sum(s.utf8.count, Interpreter.product(lineCount, indentBytes)))
        try charge(elements: lineCount)
        var result: String
        if blank {
            result = lines.joined(separator: "\n" + indention)
        } else {
            result = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                result += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
            }
        }
        if first { result = indention + result }
        try checkSize(result)
        return result
    }

    /// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    func toJSON(_ value: Value, _ args: Arguments) throws(GLMError) -> String {
        let ensureASCII = args.value(0, "ensure_ascii")?.isTruthy ?? false
        var indent: String? = nil
        switch args.value(1, "indent") {
        case nil, .some(Value.none): indent = nil
        case .some(.string(let s)): indent = s
        case .some(let v):
            let n = try intArgument(v, "indent", default: 0)
            try reserve(bytes: max(0, n))
            indent = repeatedText(" ", count: max(0, n))
        }
        var separators: (item: String, key: String)? = nil
        if let sep = args.value(2, "separators"), !sep.isNone {
            guard let parts = sep.sequenceItems, parts.count == 2, let item = parts[0].stringValue, let key = parts[1].stringValue else {
                throw error("ValueError", "separators must be a pair of strings")
            }
            separators = (item, key)
        }
        let sortKeys = args.value(3, "sort_keys")?.isTruthy ?? false
        // The text is bounded as it is written (by the size limit, or the work left when that is less): a
        // list can hold one big value many times, and an indent repeats on every line.
        var encoder = PythonJSONEncoder(ensureASCII: ensureASCII, indent: indent, sortKeys: sortKeys,
                                        limit: limits.maxOutputBytes, workLimit: remainingWork)
        // Python's defaults: (", ", ": ") on one line, (",", ": ") when indenting.
        encoder.itemSeparator = separators?.item ?? (indent == nil ? ", " : ",")
        encoder.keySeparator = separators?.key ?? ": "
        var extraWork = 0
        switch encoder.encode(value, extraWork: &extraWork) {
        case .success(let text):
            try checkSize(text)
            try charge(Interpreter.sum(text.utf8.count, extraWork))
            return text
        case .failure(let failure) where failure.isLimit:
            throw failure.message == PythonJSONEncoder.EncodingFailure.tooLong.message ? sizeExceeded(Int.max) : workExceeded()
        case .failure(let failure):
            throw error(failure.kind, failure.message)
        }
    }

    /// `subject.replace(old, new, count)` with its result bounded before it is built, charged for the scans
    /// (count the matches, copy to bytes, replace), a step per match and the result.
    func replace(_ subject: String, _ old: String, _ new: String, count: Int) throws(GLMError) -> String {
        try charge(Interpreter.sum(Interpreter.product(3, subject.utf8.count), old.utf8.count))
        var occurrences = 0
        if old.isEmpty {
            occurrences = pythonLength(subject) + 1
        } else {
            // Counting stops as soon as the matches alone would exhaust the work left.
            let affordable = remainingWork / Interpreter.stepUnits
            let hay = Array(subject.utf8), needle = Array(old.utf8)
            var at = 0
            while count < 0 || occurrences < count, let found = findBytes(hay, needle, from: at) {
                occurrences += 1
                if occurrences > affordable { throw workExceeded() }
                at = found + needle.count
            }
        }
        if count >= 0 { occurrences = min(occurrences, count) }
        try charge(Interpreter.product(occurrences, Interpreter.stepUnits))
        let growth = Interpreter.product(occurrences, max(0, new.utf8.count - old.utf8.count))
        try reserve(bytes: Interpreter.sum(subject.utf8.count, growth))
        // Writing `new` for each replaced match (its bytes are in the reserved size only when it grows).
        try charge(Interpreter.product(occurrences, new.utf8.count))
        let result = pythonReplace(subject, old, new, count: count)
        try checkSize(result)
        return result
    }

    /// markupsafe's `escape`, its size checked before it is built (an escape is up to 5 bytes per byte).
    func escape(_ s: String) throws(GLMError) -> String {
        let bytes = s.utf8.count
        try charge(Interpreter.product(2, bytes))
        if Interpreter.product(5, bytes) > limits.maxOutputBytes {
            var length = 0
            for b in s.utf8 {
                switch b {
                case 0x26: length += 5                          // &amp;
                case 0x3C, 0x3E: length += 4                    // &lt; &gt;
                case 0x22, 0x27: length += 5                    // &#34; &#39;
                default: length += 1
                }
            }
            try reserve(bytes: length)
        }
        let result = htmlEscape(s)
        try charge(result.utf8.count)
        return result
    }

    /// `str.strip/lstrip/rstrip`, charged by the bytes read and copied.
    func strip(_ s: String, chars: String?, left: Bool, right: Bool) throws(GLMError) -> String {
        try charge(Interpreter.sum(Interpreter.product(2, s.utf8.count), Interpreter.product(chars?.utf8.count ?? 0, 2)))
        return PythonString.strip(s, characters: chars, leading: left, trailing: right)
    }

    /// jinja2's `title` filter: capitalises each word, words starting after spaces, dashes and brackets.
    private func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for scalar in s.unicodeScalars {
            let separator = PythonString.isSpace(scalar) || "-({[<".unicodeScalars.contains(scalar)
            if separator {
                out.unicodeScalars.append(scalar)
                atWordStart = true
            } else if atWordStart {
                out += scalar.properties.uppercaseMapping
                atWordStart = false
            } else {
                out += scalar.properties.lowercaseMapping
            }
        }
        return out
    }

    private func stripTags(_ s: String) -> String {
        var text = ""
        var inTag = false
        for scalar in s.unicodeScalars {
            if scalar == "<" { inTag = true } else if scalar == ">" && inTag { inTag = false } else if !inTag { text.unicodeScalars.append(scalar) }
        }
        return pythonSplit(text, separator: nil, maxSplit: -1).joined(separator: " ")
    }
}

/// Python's `float(s)`: surrounding whitespace, underscores between digits, inf/nan spellings.
func parsePythonFloat(_ s: String) -> Double? {
    let t = PythonString.strip(s, characters: nil, leading: true, trailing: true)
    guard !t.isEmpty else { return nil }
    let lower = t.lowercased()
    let unsigned = lower.hasPrefix("-") || lower.hasPrefix("+") ? String(lower.dropFirst()) : lower
    if unsigned == "inf" || unsigned == "infinity" { return lower.hasPrefix("-") ? -.infinity : .infinity }
    if unsigned == "nan" { return .nan }
    guard t.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 || $0 == 0x2B || $0 == 0x2D || $0 == 0x5F }) else { return nil }
    if t.contains("__") || t.hasPrefix("_") || t.hasSuffix("_") { return nil }
    return Double(t.replacingOccurrences(of: "_", with: ""))
}

/// Python's `int(s, base)`.
func parsePythonInt(_ s: String, base: Int) -> Value? {
    var t = PythonString.strip(s, characters: nil, leading: true, trailing: true)
    var negative = false
    if t.hasPrefix("-") { negative = true; t.removeFirst() } else if t.hasPrefix("+") { t.removeFirst() }
    var radix = base
    let lower = t.lowercased()
    if base == 16 && lower.hasPrefix("0x") || base == 8 && lower.hasPrefix("0o") || base == 2 && lower.hasPrefix("0b") { t.removeFirst(2) }
    if base == 0 {
        if lower.hasPrefix("0x") { radix = 16; t.removeFirst(2) } else if lower.hasPrefix("0o") { radix = 8; t.removeFirst(2) } else if lower.hasPrefix("0b") { radix = 2; t.removeFirst(2) } else { radix = 10 }
    }
    guard radix >= 2 && radix <= 36, !t.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"), !t.contains("__") else { return nil }
    let digits = t.replacingOccurrences(of: "_", with: "")
    guard digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLetter) }) else { return nil }
    if let v = Int(digits, radix: radix) { return .int(negative ? -v : v) }
    if radix == 10 && digits.allSatisfy({ $0.isNumber }) { return .bigInt((negative ? "-" : "") + digits) }
    return nil
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        pythonReplace(self, target, replacement, count: -1)
    }
}
