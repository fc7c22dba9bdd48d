/// One entry of `added_tokens` (tokenizer.json) or a CONTROL / USER_DEFINED token (GGUF).
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    public var special: Bool
    public var singleWord = false
    public var leftStrip = false
    public var rightStrip = false
    /// Matched after normalization (HF default for non-special tokens) instead of on the raw text.
    public var normalized = false

    public init(id: Int32, content: String, special: Bool, singleWord: Bool = false, leftStrip: Bool = false,
                rightStrip: Bool = false, normalized: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.singleWord = singleWord
        self.leftStrip = leftStrip
        self.rightStrip = rightStrip
        self.normalized = normalized
    }
}

/// Finds added tokens in text the way HF's `AddedVocabulary` does: leftmost-longest non-overlapping matches
/// over the token contents (an Aho-Corasick `LeftmostLongest` search), then the `single_word`, `lstrip` and
/// `rstrip` rules, giving alternating plain and added-token segments.
struct AddedTokenMatcher: Sendable {
    private struct Node: Sendable {
        var edges: [(byte: UInt8, next: Int32)] = []
        var token = -1   // index into `tokens` when a token ends here
    }
    private var nodes = [Node()]
    private(set) var tokens: [AddedToken] = []
    /// Bytes that start some token: most text positions are rejected by one table lookup.
    private var firstByte = [Bool](repeating: false, count: 256)

    init(_ tokens: [AddedToken]) {
        for t in tokens where !t.content.isEmpty {
            var node = 0
            for b in t.content.utf8 {
                if let e = nodes[node].edges.first(where: { $0.byte == b }) {
                    node = Int(e.next)
                } else {
                    nodes.append(Node())
                    nodes[node].edges.append((b, Int32(nodes.count - 1)))
                    node = nodes.count - 1
                }
            }
            // Two added tokens with the same content: the later one wins, like HF's map rebuild.
            if nodes[node].token >= 0 {
                self.tokens[nodes[node].token] = t
            } else {
                nodes[node].token = self.tokens.count
                self.tokens.append(t)
            }
            if let b = t.content.utf8.first { firstByte[Int(b)] = true }
        }
    }

    /// The longest token starting at `start`, as (token index, end).
    @inline(__always)
    private func longest(in text: UnsafeRawBufferPointer, at start: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)? = nil
        var i = start
        while i < text.count {
            let b = text[i]
            guard let e = nodes[node].edges.first(where: { $0.byte == b }) else { break }
            node = Int(e.next)
            i += 1
            if nodes[node].token >= 0 { best = (nodes[node].token, i) }
        }
        return best
    }

    /// Splits `text` (a byte range of some buffer) into segments: `(range, token)` where token is nil for
    /// plain text. Ranges are absolute in `text`'s buffer; `offset` is added to each.
    func split(_ text: UnsafeRawBufferPointer, offset: Int, into out: inout [(range: Range<Int>, token: Int32?)]) {
        if tokens.isEmpty || text.isEmpty {
            if !text.isEmpty { out.append((offset..<(offset + text.count), nil)) }
            return
        }
        var matches: [(token: Int, start: Int, end: Int)] = []
        var i = 0
        while i < text.count {
            if firstByte[Int(text[i])], let (t, end) = longest(in: text, at: i) {
                matches.append((t, i, end))
                i = end
            } else {
                i += 1
            }
        }
        var cursor = 0
        for m in matches {
            let token = tokens[m.token]
            var start = m.start, stop = m.end
            if token.singleWord {
                let startOK = start == 0 || !AddedTokenMatcher.endsWithWordCharacter(text, before: start)
                let stopOK = stop == text.count || !AddedTokenMatcher.startsWithWordCharacter(text, at: stop)
                if !startOK || !stopOK { continue }
            }
            if token.leftStrip {
                start = max(AddedTokenMatcher.whitespaceRunStart(text, before: start), cursor)
            }
            if token.rightStrip {
                stop = AddedTokenMatcher.whitespaceRunEnd(text, from: stop)
            }
            if cursor < start { out.append(((offset + cursor)..<(offset + start), nil)) }
            out.append(((offset + start)..<(offset + stop), token.id))
            cursor = stop
        }
        if cursor < text.count { out.append(((offset + cursor)..<(offset + text.count), nil)) }
    }

    // Character tests on UTF-8 text, for the strip and single-word rules (Rust `char` semantics).

    private static func scalar(endingBefore end: Int, in text: UnsafeRawBufferPointer) -> (Unicode.Scalar, Int)? {
        var start = end - 1
        while start > 0 && text[start] & 0xC0 == 0x80 && end - start < 4 { start -= 1 }
        guard start >= 0 else { return nil }
        var it = UnsafeRawBufferPointer(rebasing: text[start..<end]).makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let s) = decoder.decode(&it) { return (s, start) }
        return nil
    }

    private static func scalar(startingAt start: Int, in text: UnsafeRawBufferPointer) -> (Unicode.Scalar, Int)? {
        guard start < text.count else { return nil }
        var it = UnsafeRawBufferPointer(rebasing: text[start...]).makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let s) = decoder.decode(&it) { return (s, start + s.utf8.count) }
        return nil
    }

    /// Rust `char::is_alphanumeric() || c == '_'`.
    static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        if s == "_" { return true }
        let p = s.properties
        if p.isAlphabetic { return true }
        switch p.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func endsWithWordCharacter(_ text: UnsafeRawBufferPointer, before end: Int) -> Bool {
        guard let (s, _) = scalar(endingBefore: end, in: text) else { return false }
        return isWordCharacter(s)
    }

    static func startsWithWordCharacter(_ text: UnsafeRawBufferPointer, at start: Int) -> Bool {
        guard let (s, _) = scalar(startingAt: start, in: text) else { return false }
        return isWordCharacter(s)
    }

    static func whitespaceRunStart(_ text: UnsafeRawBufferPointer, before end: Int) -> Int {
        var i = end
        while i > 0, let (s, start) = scalar(endingBefore: i, in: text), s.properties.isWhitespace { i = start }
        return i
    }

    static func whitespaceRunEnd(_ text: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        while let (s, end) = scalar(startingAt: i, in: text), s.properties.isWhitespace { i = end }
        return i
    }
}
