/// Python's `str.isspace()` and `str.strip()`, shared by the template engine (Jinja's `trim`, `strip()`,
/// `split()`, whitespace control) and the output parsers (vLLM's parser strips names, keys and content with
/// `str.strip()`). One table, one strip, so both agree with Python and with each other. Checked on Unicode scalars
/// so the answer never depends on how Swift groups characters (a combining mark after a space must not hide it).
public enum PythonString {
    /// `str.isspace()` for one scalar: bidi classes WS, B, S and category Zs (the 29 scalars CPython lists).
    public static func isSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    public static func isSpace(_ scalar: Unicode.Scalar) -> Bool { isSpace(scalar.value) }

    /// `s.strip(characters)` / `lstrip` / `rstrip`: removes leading and/or trailing scalars that are whitespace
    /// (`characters` nil) or in `characters`.
    public static func strip(_ s: String, characters: String? = nil, leading: Bool = true, trailing: Bool = true)
        -> String {
        if characters == nil, let fast = asciiStrip(s, leading: leading, trailing: trailing) { return fast }
        let set = characters.map { Set($0.unicodeScalars) }
        func strips(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, strips(f) { scalars.removeFirst() } }
        if trailing { while let l = scalars.last, strips(l) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// The whitespace strip on UTF-8 bytes when both ends are ASCII (nil when a non-ASCII scalar is at an end,
    /// which may be Unicode whitespace): most template text and model output takes this path.
    private static func asciiStrip(_ s: String, leading: Bool, trailing: Bool) -> String? {
        let utf8 = s.utf8
        var start = utf8.startIndex, end = utf8.endIndex
        if leading {
            while start < end, utf8[start] < 0x80, isSpace(UInt32(utf8[start])) { start = utf8.index(after: start) }
            if start < end && utf8[start] >= 0x80 { return nil }
        }
        if trailing {
            while end > start {
                let last = utf8[utf8.index(before: end)]
                if last >= 0x80 { return nil }
                if !isSpace(UInt32(last)) { break }
                end = utf8.index(before: end)
            }
        }
        if start == utf8.startIndex && end == utf8.endIndex { return s }
        return String(s[start..<end])
    }
}
