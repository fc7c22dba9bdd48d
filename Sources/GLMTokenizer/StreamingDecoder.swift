import GLMSupport

/// Turns a stream of token ids into text as it becomes complete: a token that ends inside a UTF-8 character
/// yields nothing until a later token completes it. Bytes that can never form a character become U+FFFD, so
/// the pieces concatenated equal `Tokenizer.decode` of all ids.
public struct StreamingDecoder: Sendable {
    public var skipSpecialTokens: Bool
    /// Bytes of an unfinished character, held back (at most 3).
    private var pending: [UInt8] = []

    public init(skipSpecialTokens: Bool = false) {
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one token; returns the text completed by it (possibly empty).
    public mutating func append(_ id: Int32, from tokenizer: Tokenizer) throws(GLMError) -> String {
        try tokenizer.checkID(id, position: nil)
        if skipSpecialTokens && tokenizer.isSpecial(id) { return "" }
        tokenizer.model.tokens.withBytes(of: id) { pending.append(contentsOf: $0) }
        let keep = StreamingDecoder.incompleteTailLength(pending)
        if keep == pending.count { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Ends the stream: an unfinished character left over becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Whether bytes are held back waiting for the rest of a character.
    public var hasPendingBytes: Bool { !pending.isEmpty }

    /// Length of a suffix that is a valid but unfinished UTF-8 sequence (0 when the bytes end cleanly or
    /// the tail can never become valid, in which case it is emitted as U+FFFD now).
    static func incompleteTailLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var k = 1
        while k <= min(3, n) {
            let b = bytes[n - k]
            if b & 0xC0 == 0x80 { k += 1; continue }
            let need: Int
            switch b {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return 0
            }
            guard need > k else { return 0 }
            // The second byte's range depends on the lead (no overlongs, surrogates or values past U+10FFFF).
            if k >= 2 {
                let second = bytes[n - k + 1]
                let ok: Bool
                switch b {
                case 0xE0: ok = (0xA0...0xBF).contains(second)
                case 0xED: ok = (0x80...0x9F).contains(second)
                case 0xF0: ok = (0x90...0xBF).contains(second)
                case 0xF4: ok = (0x80...0x8F).contains(second)
                default: ok = true
                }
                if !ok { return 0 }
            }
            return k
        }
        return 0
    }
}
