import GLMJSON
import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

// Python's text semantics, which jinja2 inherits: str()/repr() of values, and str methods that work on code
// points (not Swift's grapheme clusters or canonical equivalence).

/// `repr(s)` of a Python str: single quotes unless the text has a `'` and no `"`; non-printables escaped.
func pythonRepr(_ s: String) -> String {
    var out = ""
    _ = writeQuoted(s, into: &out)
    return out
}

/// Appends `repr(s)`; returns the bytes of `s` outside ASCII, which took the slow path (a Unicode property
/// lookup per code point) and are charged extra.
private func writeQuoted(_ s: String, into out: inout String) -> Int {
    let hasSingle = bytesContain(s, UInt8(ascii: "'"))
    let hasDouble = bytesContain(s, UInt8(ascii: "\""))
    let quote: Unicode.Scalar = hasSingle && !hasDouble ? "\"" : "'"
    let quoteByte = UInt8(quote.value)
    out.unicodeScalars.append(quote)
    // Text that needs no escape (the usual case) is copied whole.
    if bytesAll(s, { $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C && $0 != quoteByte }) {
        out += s
        out.unicodeScalars.append(quote)
        return 0
    }
    var slowBytes = 0
    let utf8 = s.utf8
    var runStart = utf8.startIndex
    var i = runStart
    // Printable ASCII is copied in runs; everything else is looked at one code point at a time.
    while i < utf8.endIndex {
        let b = utf8[i]
        if b >= 0x20 && b < 0x7F && b != 0x5C && b != quoteByte {
            i = utf8.index(after: i)
            continue
        }
        out += s[runStart..<i]
        let scalar = s.unicodeScalars[i]
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case quote: out += "\\" + String(quote)
        default:
            if b >= 0x80 { slowBytes += UTF8.width(scalar) }
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
        i = s.unicodeScalars.index(after: i)
        runStart = i
    }
    out += s[runStart..<i]
    out.unicodeScalars.append(quote)
    return slowBytes
}

/// Whether every UTF-8 byte of `s` satisfies `test`, checked on contiguous storage when there is some (a
/// tight loop, much faster than walking the view).
@inline(__always)
func bytesAll(_ s: String, _ test: (UInt8) -> Bool) -> Bool {
    if let result = s.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
        for b in bytes where !test(b) { return false }
        return true
    }) {
        return result
    }
    return s.utf8.allSatisfy(test)
}

/// Whether `s` has the byte `byte` (memchr on contiguous storage).
func bytesContain(_ s: String, _ byte: UInt8) -> Bool {
    if let found = s.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
        guard let base = bytes.baseAddress else { return false }
        return memchr(base, Int32(byte), bytes.count) != nil
    }) {
        return found
    }
    return s.utf8.contains(byte)
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

/// `str(value)`: what `{{ value }}` prints. Unbounded: templates go through `Interpreter.str`.
func pythonStr(_ value: Value) -> String {
    switch value {
    case .undefined: return ""
    case .string(let s), .markup(let s): return s
    default:
        var out = ""
        var slowBytes = 0
        _ = writeRepr(value, into: &out, top: true, limit: Int.max, slowBytes: &slowBytes)
        return out
    }
}

/// `repr(value)`. Unbounded: templates go through `Interpreter.repr`.
func pythonReprValue(_ value: Value) -> String {
    var out = ""
    var slowBytes = 0
    _ = writeRepr(value, into: &out, top: false, limit: Int.max, slowBytes: &slowBytes)
    return out
}

extension Interpreter {
    /// `str(value)`, charged by the bytes written and bounded by `maxOutputBytes` and the work left: a list
    /// can hold one big value many times, so its text can be far larger than the memory it uses.
    func str(_ value: Value) throws(GLMError) -> String {
        switch value {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return try reprText(value, top: true)
        }
    }

    /// `repr(value)`, bounded as `str`.
    func repr(_ value: Value) throws(GLMError) -> String { try reprText(value, top: false) }

    private func reprText(_ value: Value, top: Bool) throws(GLMError) -> String {
        let limit = min(limits.maxOutputBytes, remainingWork)
        var out = ""
        var slowBytes = 0
        guard writeRepr(value, into: &out, top: top, limit: limit, slowBytes: &slowBytes) else {
            throw limit == limits.maxOutputBytes ? sizeExceeded(Int.max) : workExceeded()
        }
        try charge(out.utf8.count)
        try charge(Interpreter.product(Interpreter.unicodeUnitsPerByte, slowBytes))
        return out
    }
}

/// Writes `repr(value)` (or `str` when `top`); returns false, leaving `out` partial, once `out` would pass
/// `limit` bytes. Every value visited writes at least one byte, so the walk is bounded by `limit` too.
/// `slowBytes` counts the bytes of strings quoted through the per-code-point path.
private func writeRepr(_ value: Value, into out: inout String, top: Bool, limit: Int, slowBytes: inout Int) -> Bool {
    switch value {
    case .undefined: out += top ? "" : "Undefined"
    case .none: out += "None"
    case .bool(let b): out += b ? "True" : "False"
    case .int(let i): out += String(i)
    case .bigInt(let t): out += t
    case .float(let d): out += PythonFloat.repr(d)
    case .string(let s), .markup(let s):
        // Checked before copying, so a huge string is never copied past the limit (its quoted form, at most
        // 4 bytes per byte as in `\x00`, is checked after).
        let bytes = s.utf8.count
        if bytes > limit &- out.utf8.count { return false }
        if top {
            out += s
        } else if case .markup = value {
            out += "Markup("
            slowBytes += writeQuoted(s, into: &out)
            out += ")"
        } else {
            slowBytes += writeQuoted(s, into: &out)
        }
    case .list(let items), .tuple(let items):
        let isTuple: Bool
        if case .tuple = value { isTuple = true } else { isTuple = false }
        out += isTuple ? "(" : "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            if !writeRepr(item, into: &out, top: false, limit: limit, slowBytes: &slowBytes) { return false }
        }
        out += isTuple ? (items.count == 1 ? ",)" : ")") : "]"
    case .dict(let dict):
        out += "{"
        var first = true
        for (k, v) in dict.pairs {
            if !first { out += ", " }
            first = false
            if !writeRepr(k, into: &out, top: false, limit: limit, slowBytes: &slowBytes) { return false }
            out += ": "
            if !writeRepr(v, into: &out, top: false, limit: limit, slowBytes: &slowBytes) { return false }
        }
        out += "}"
    case .namespace(let ns):
        out += "<Namespace "
        if !writeRepr(.dict(ns.attributes), into: &out, top: false, limit: limit, slowBytes: &slowBytes) { return false }
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
            if !writeRepr(.list(it.items), into: &out, top: false, limit: limit, slowBytes: &slowBytes) { return false }
            out += ")"
        } else {
            out += "<\(it.kind.rawValue) object>"
        }
    }
    return out.utf8.count <= limit
}

// MARK: - Code-point level string operations

/// Byte offset of `needle` in `hay` at or after `start` (UTF-8 is self-synchronising, so byte matches are
/// code-point matches). Linear in `hay` plus `needle` whatever the text, which the work budget relies on (it
/// charges a search by the bytes it is given): candidates are found with memchr and checked with memcmp,
/// and once checking has cost as much as the whole text, Knuth-Morris-Pratt finishes the search.
func findBytes(_ hay: [UInt8], _ needle: [UInt8], from start: Int = 0) -> Int? {
    let n = needle.count, h = hay.count
    let from = max(0, start)
    if n == 0 { return from <= h ? from : nil }
    if from > h || n > h - from { return nil }
    return hay.withUnsafeBufferPointer { hayBuffer -> Int? in
        needle.withUnsafeBufferPointer { needleBuffer -> Int? in
            guard let base = hayBuffer.baseAddress, let pattern = needleBuffer.baseAddress else { return nil }
            let lastStart = h - n
            var i = from
            var checked = 0
            while i <= lastStart {
                guard let hit = memchr(base + i, Int32(pattern[0]), lastStart - i + 1) else { return nil }
                i = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                if memcmp(base + i, pattern, n) == 0 { return i }
                checked += n
                if checked > h { return kmpFind(hayBuffer, needleBuffer, from: i + 1) }
                i += 1
            }
            return nil
        }
    }
}

/// Knuth-Morris-Pratt: first offset of `needle` in `hay` at or after `from`.
private func kmpFind(_ hay: UnsafeBufferPointer<UInt8>, _ needle: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
    let n = needle.count
    let failure = borders(n) { needle[$0] }
    var matched = 0
    var i = from
    while i < hay.count {
        while matched > 0 && hay[i] != needle[matched] { matched = failure[matched - 1] }
        if hay[i] == needle[matched] { matched += 1 }
        if matched == n { return i - n + 1 }
        i += 1
    }
    return nil
}

/// Knuth-Morris-Pratt's failure table of a pattern of `n` bytes: entry k is the length of the longest proper
/// border of the pattern's first k + 1 bytes.
private func borders(_ n: Int, _ byte: (Int) -> UInt8) -> [Int] {
    var failure = [Int](repeating: 0, count: n)
    var k = 0
    var q = 1
    while q < n {
        while k > 0 && byte(q) != byte(k) { k = failure[k - 1] }
        if byte(q) == byte(k) { k += 1 }
        failure[q] = k
        q += 1
    }
    return failure
}

/// Last byte offset of `needle` in `hay[..<end]`: Knuth-Morris-Pratt with both read backwards, linear as
/// `findBytes` is.
func findLastBytes(_ hay: [UInt8], _ needle: [UInt8], end: Int) -> Int? {
    let n = needle.count
    let end = min(max(end, 0), hay.count)
    if n == 0 { return end }
    if n > end { return nil }
    let failure = borders(n) { needle[n - 1 - $0] }
    var matched = 0
    var i = end - 1
    while i >= 0 {
        while matched > 0 && hay[i] != needle[n - 1 - matched] { matched = failure[matched - 1] }
        if hay[i] == needle[n - 1 - matched] { matched += 1 }
        if matched == n { return i }
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
    guard a.utf8.count == b.utf8.count else { return false }
    // memcmp on the UTF-8 storage when both are contiguous (native strings are), several times faster
    // than stepping through the views.
    let compared = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y in
            x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
        }
    }
    if let result = compared ?? nil { return result }
    return a.utf8.elementsEqual(b.utf8)
}

/// `s * count` in Python: the text repeated, built by doubling copies (String(repeating:) appends one copy
/// at a time, 25 times slower for a long result).
func repeatedText(_ s: String, count: Int) -> String {
    let unit = Array(s.utf8)
    guard count > 0, !unit.isEmpty else { return "" }
    let (total, overflow) = unit.count.multipliedReportingOverflow(by: count)
    guard !overflow else { return "" }
    if total <= 64 { return String(repeating: s, count: count) }
    return String(unsafeUninitializedCapacity: total) { buffer in
        guard let base = buffer.baseAddress else { return 0 }
        unit.withUnsafeBufferPointer { u in
            if let source = u.baseAddress { _ = memcpy(base, source, u.count) }
        }
        var filled = unit.count
        while filled < total {
            let chunk = min(filled, total - filled)
            memcpy(base + filled, base, chunk)
            filled += chunk
        }
        return total
    }
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
            while let f = scalars.first, PythonString.isSpace(f) { scalars.removeFirst() }
            if scalars.isEmpty { break }
            if maxSplit >= 0 && splits >= maxSplit {
                parts.append(String(String.UnicodeScalarView(scalars)))
                break
            }
            var end = scalars.startIndex
            while end < scalars.endIndex && !PythonString.isSpace(scalars[end]) { end = scalars.index(after: end) }
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
            while let l = scalars.last, PythonString.isSpace(l) { scalars.removeLast() }
            if scalars.isEmpty { break }
            if parts.count >= maxSplit {
                parts.append(String(String.UnicodeScalarView(scalars)))
                break
            }
            var start = scalars.count
            while start > 0 && !PythonString.isSpace(scalars[start - 1]) { start -= 1 }
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
    if bytesAll(s, { $0 < 0x80 }) { return s.lowercased() }
    return pythonLowerUnicode(s)
}

func pythonUpper(_ s: String) -> String {
    if bytesAll(s, { $0 < 0x80 }) { return s.uppercased() }
    return pythonUpperUnicode(s)
}

/// `pythonLower` without the ASCII fast path.
func pythonLowerUnicode(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars { out += scalar.properties.lowercaseMapping }
    return out
}

func pythonUpperUnicode(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars { out += scalar.properties.uppercaseMapping }
    return out
}

/// Python's `len()` of a str: code points.
func pythonLength(_ s: String) -> Int {
    // Code points are the bytes that do not continue a UTF-8 sequence; counted on the storage when it is
    // contiguous (a loop the compiler vectorises).
    let counted = s.utf8.withContiguousStorageIfAvailable { bytes -> Int in
        var n = 0
        for b in bytes where b & 0xC0 != 0x80 { n += 1 }
        return n
    }
    return counted ?? s.unicodeScalars.count
}
