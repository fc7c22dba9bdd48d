import GLMJSON
import GLMSupport

// Python's text semantics, which jinja2 inherits: str()/repr() of values, and str methods that work on code
// points (not Swift's grapheme clusters or canonical equivalence).

/// `repr(s)` of a Python str: single quotes unless the text has a `'` and no `"`; non-printables escaped.
func pythonRepr(_ s: String) -> String {
    let hasSingle = s.utf8.contains(UInt8(ascii: "'"))
    let hasDouble = s.utf8.contains(UInt8(ascii: "\""))
    let quote: Unicode.Scalar = hasSingle && !hasDouble ? "\"" : "'"
    var out = String(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case quote: out += "\\" + String(quote)
        default:
            if isPythonPrintable(scalar) {
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x100 {
                out += "\\x" + hexDigits(scalar.value, width: 2)
            } else if scalar.value < 0x10000 {
                out += "\\u" + hexDigits(scalar.value, width: 4)
            } else {
                out += "\\U" + hexDigits(scalar.value, width: 8)
            }
        }
    }
    out.unicodeScalars.append(quote)
    return out
}

func hexDigits(_ v: UInt32, width: Int) -> String {
    let text = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}

/// `str.isprintable()` for one code point: false for controls, format characters, separators other than the
/// ASCII space, surrogates and private use (Unicode categories Cc, Cf, Zs, Zl, Zp, Cs, Co; unassigned code
/// points are treated as printable, a documented approximation).
func isPythonPrintable(_ scalar: Unicode.Scalar) -> Bool {
    let v = scalar.value
    if v < 0x20 || (v >= 0x7F && v < 0xA0) { return false }
    if v < 0xA0 { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .spaceSeparator, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse:
        return false
    default:
        return true
    }
}

/// `str.isspace()` for one code point.
func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

/// `str(value)`: what `{{ value }}` prints.
func pythonStr(_ value: Value) -> String {
    switch value {
    case .undefined: return ""
    case .string(let s), .markup(let s): return s
    default:
        var out = ""
        writeRepr(value, into: &out, top: true)
        return out
    }
}

/// `repr(value)`.
func pythonReprValue(_ value: Value) -> String {
    var out = ""
    writeRepr(value, into: &out, top: false)
    return out
}

private func writeRepr(_ value: Value, into out: inout String, top: Bool) {
    switch value {
    case .undefined: out += top ? "" : "Undefined"
    case .none: out += "None"
    case .bool(let b): out += b ? "True" : "False"
    case .int(let i): out += String(i)
    case .bigInt(let t): out += t
    case .float(let d): out += PythonFloat.repr(d)
    case .string(let s): out += top ? s : pythonRepr(s)
    case .markup(let s): out += top ? s : "Markup(\(pythonRepr(s)))"
    case .list(let items):
        out += "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            writeRepr(item, into: &out, top: false)
        }
        out += "]"
    case .tuple(let items):
        out += "("
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            writeRepr(item, into: &out, top: false)
        }
        out += items.count == 1 ? ",)" : ")"
    case .dict(let dict):
        out += "{"
        var first = true
        for (k, v) in dict.pairs {
            if !first { out += ", " }
            first = false
            writeRepr(k, into: &out, top: false)
            out += ": "
            writeRepr(v, into: &out, top: false)
        }
        out += "}"
    case .namespace(let ns):
        out += "<Namespace "
        writeRepr(.dict(ns.attributes), into: &out, top: false)
        out += ">"
    case .callable(let c):
        switch c.kind {
        case .macro(let m): out += "<Macro \(pythonRepr(m.definition.name))>"
        case .builtin(let name, _): out += "<function \(name)>"
        case .method(let receiver, let name): out += "<built-in method \(name) of \(receiver.typeName) object>"
        }
    case .loop(let state): out += "<LoopContext \(state.index0 + 1)/\(state.items.count)>"
    case .iterator(let it):
        if it.kind.isView {
            out += it.kind.rawValue + "("
            writeRepr(.list(it.items), into: &out, top: false)
            out += ")"
        } else {
            out += "<\(it.kind.rawValue) object>"
        }
    }
}

// MARK: - Code-point level string operations

/// Byte offset of `needle` in `hay` at or after `start` (UTF-8 is self-synchronising, so byte matches are
/// code-point matches).
func findBytes(_ hay: [UInt8], _ needle: [UInt8], from start: Int = 0) -> Int? {
    let n = needle.count, h = hay.count
    if n == 0 { return start <= h ? start : nil }
    if n > h { return nil }
    let first = needle[0]
    var i = max(0, start)
    while i <= h - n {
        if hay[i] == first {
            var j = 1
            while j < n && hay[i + j] == needle[j] { j += 1 }
            if j == n { return i }
        }
        i += 1
    }
    return nil
}

/// Last byte offset of `needle` in `hay[..<end]`.
func findLastBytes(_ hay: [UInt8], _ needle: [UInt8], end: Int) -> Int? {
    let n = needle.count
    if n == 0 { return end }
    var i = end - n
    while i >= 0 {
        var j = 0
        while j < n && hay[i + j] == needle[j] { j += 1 }
        if j == n { return i }
        i -= 1
    }
    return nil
}

func stringFromBytes(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

func pythonContains(_ hay: String, _ needle: String) -> Bool {
    if needle.isEmpty { return true }
    return findBytes(Array(hay.utf8), Array(needle.utf8)) != nil
}

func pythonStringsEqual(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
}

/// Orders strings by code point, as Python does.
func pythonStringLess(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}

/// `str.split(sep, maxsplit)`; a nil separator splits on runs of whitespace and drops empty pieces.
func pythonSplit(_ s: String, separator: String?, maxSplit: Int) -> [String] {
    guard let separator else {
        var parts: [String] = []
        var scalars = Substring(s).unicodeScalars[...]
        var splits = 0
        while true {
            while let f = scalars.first, isPythonSpace(f) { scalars.removeFirst() }
            if scalars.isEmpty { break }
            if maxSplit >= 0 && splits >= maxSplit {
                parts.append(String(String.UnicodeScalarView(scalars)))
                break
            }
            var end = scalars.startIndex
            while end < scalars.endIndex && !isPythonSpace(scalars[end]) { end = scalars.index(after: end) }
            parts.append(String(String.UnicodeScalarView(scalars[scalars.startIndex..<end])))
            scalars = scalars[end...]
            splits += 1
        }
        return parts
    }
    let hay = Array(s.utf8), needle = Array(separator.utf8)
    var parts: [String] = []
    var start = 0
    while maxSplit < 0 || parts.count < maxSplit, let at = findBytes(hay, needle, from: start) {
        parts.append(stringFromBytes(hay[start..<at]))
        start = at + needle.count
    }
    parts.append(stringFromBytes(hay[start...]))
    return parts
}

/// `str.rsplit(sep, maxsplit)`.
func pythonRSplit(_ s: String, separator: String?, maxSplit: Int) -> [String] {
    if maxSplit < 0 { return pythonSplit(s, separator: separator, maxSplit: -1) }
    guard let separator else {
        var parts: [String] = []
        var scalars = Array(s.unicodeScalars)
        while true {
            while let l = scalars.last, isPythonSpace(l) { scalars.removeLast() }
            if scalars.isEmpty { break }
            if parts.count >= maxSplit {
                parts.append(String(String.UnicodeScalarView(scalars)))
                break
            }
            var start = scalars.count
            while start > 0 && !isPythonSpace(scalars[start - 1]) { start -= 1 }
            parts.append(String(String.UnicodeScalarView(scalars[start...])))
            scalars.removeSubrange(start...)
        }
        return parts.reversed()
    }
    let hay = Array(s.utf8), needle = Array(separator.utf8)
    var parts: [String] = []
    var end = hay.count
    while parts.count < maxSplit, let at = findLastBytes(hay, needle, end: end) {
        parts.append(stringFromBytes(hay[(at + needle.count)..<end]))
        end = at
    }
    parts.append(stringFromBytes(hay[..<end]))
    return parts.reversed()
}

/// `str.strip/lstrip/rstrip(chars)`; nil chars strips whitespace.
func pythonStrip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
    if chars == nil, let fast = asciiStrip(s, left: left, right: right) { return fast }
    let set = chars.map { Set($0.unicodeScalars) }
    func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
    var scalars = Substring(s).unicodeScalars[...]
    if left { while let f = scalars.first, strip(f) { scalars.removeFirst() } }
    if right { while let l = scalars.last, strip(l) { scalars.removeLast() } }
    return String(String.UnicodeScalarView(scalars))
}

/// Whitespace strip on UTF-8 bytes when both ends are ASCII (nil when a non-ASCII code point is at an end).
private func asciiStrip(_ s: String, left: Bool, right: Bool) -> String? {
    let utf8 = s.utf8
    func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F) }
    var start = utf8.startIndex, end = utf8.endIndex
    if left {
        while start < end, utf8[start] < 0x80, isSpace(utf8[start]) { start = utf8.index(after: start) }
        if start < end && utf8[start] >= 0x80 { return nil }
    }
    if right {
        while end > start {
            let last = utf8[utf8.index(before: end)]
            if last >= 0x80 { return nil }
            if !isSpace(last) { break }
            end = utf8.index(before: end)
        }
    }
    if start == utf8.startIndex && end == utf8.endIndex { return s }
    return String(s[start..<end])
}

/// `str.replace(old, new, count)`.
func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    if old.isEmpty {
        // Python inserts `new` between every code point and at both ends.
        var out = ""
        var done = 0
        for scalar in s.unicodeScalars {
            if count < 0 || done < count { out += new; done += 1 }
            out.unicodeScalars.append(scalar)
        }
        if count < 0 || done < count { out += new }
        return out
    }
    let hay = Array(s.utf8), needle = Array(old.utf8)
    guard var at = findBytes(hay, needle) else { return s }
    var out = [UInt8]()
    out.reserveCapacity(hay.count)
    var start = 0, done = 0
    while true {
        out += hay[start..<at]
        out += new.utf8
        start = at + needle.count
        done += 1
        if count >= 0 && done >= count { break }
        guard let next = findBytes(hay, needle, from: start) else { break }
        at = next
    }
    out += hay[start...]
    return String(decoding: out, as: UTF8.self)
}

/// `str.splitlines(keepends)`.
func pythonSplitLines(_ s: String, keepEnds: Bool = false) -> [String] {
    var lines: [String] = []
    let scalars = Array(s.unicodeScalars)
    var start = 0, i = 0
    while i < scalars.count {
        let v = scalars[i].value
        var breakLength = 0
        switch v {
        case 0x0D: breakLength = (i + 1 < scalars.count && scalars[i + 1] == "\n") ? 2 : 1
        case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: breakLength = 1
        default: break
        }
        if breakLength > 0 {
            let end = keepEnds ? i + breakLength : i
            lines.append(String(String.UnicodeScalarView(scalars[start..<end])))
            i += breakLength
            start = i
        } else {
            i += 1
        }
    }
    if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
    return lines
}

/// `str.title()`: upper-cases the first cased letter after an uncased character, lower-cases the rest.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for scalar in s.unicodeScalars {
        let props = scalar.properties
        if props.isCased {
            out += previousCased ? props.lowercaseMapping : props.titlecaseMapping
            previousCased = true
        } else {
            out.unicodeScalars.append(scalar)
            previousCased = false
        }
    }
    return out
}

/// `str.capitalize()`: first character title case (Python 3.8+ uses title case), the rest lower case.
func pythonCapitalize(_ s: String) -> String {
    var out = ""
    for (i, scalar) in s.unicodeScalars.enumerated() {
        out += i == 0 ? scalar.properties.titlecaseMapping : scalar.properties.lowercaseMapping
    }
    return out
}

func pythonLower(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return s.lowercased() }
    var out = ""
    for scalar in s.unicodeScalars { out += scalar.properties.lowercaseMapping }
    return out
}

func pythonUpper(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return s.uppercased() }
    var out = ""
    for scalar in s.unicodeScalars { out += scalar.properties.uppercaseMapping }
    return out
}

/// Python's `len()` of a str: code points.
func pythonLength(_ s: String) -> Int { s.unicodeScalars.count }
