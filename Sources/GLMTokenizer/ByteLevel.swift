/// GPT-2's byte↔character mapping, used by every byte-level BPE: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes for U+0100 upward in byte order (so a space is `Ġ`, a newline `Ċ`).
enum ByteLevel {
    /// `scalarForByte[b]` is the character byte `b` is written as in vocabulary strings.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The inverse: byte for a scalar below 0x144, or -1 when the scalar is not part of the alphabet.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// Decodes a vocabulary string written in the byte alphabet into raw bytes; nil if some character
    /// is outside the alphabet (such a string is an added token's literal text).
    static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        var out: [UInt8] = []
        return decode(text, into: &out) ? out : nil
    }

    /// `decode` into a reused buffer (replacing its contents); false when outside the alphabet.
    static func decode(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        byteForScalar.withUnsafeBufferPointer { decode(text, into: &out, table: $0) }
    }

    /// `decode` with the inverse table already in hand (hot loops: avoids touching the global per byte).
    static func decode(_ text: UnsafeRawBufferPointer, into out: inout [UInt8], table byteForScalar: UnsafeBufferPointer<Int16>) -> Bool {
        out.removeAll(keepingCapacity: true)
        var i = 0
        while i < text.count {
            let b0 = text[i]
            var scalar: UInt32
            if b0 < 0x80 {
                scalar = UInt32(b0)
                i += 1
            } else if b0 & 0xE0 == 0xC0, i + 1 < text.count {
                scalar = UInt32(b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F)
                i += 2
            } else {
                return false // three- and four-byte characters are all outside the alphabet
            }
            guard scalar < 0x144 else { return false }
            let b = byteForScalar[Int(scalar)]
            guard b >= 0 else { return false }
            out.append(UInt8(b))
        }
        return true
    }

    /// Writes raw bytes in the byte alphabet (for tokenToString / tokenizer.json export).
    static func encode(_ bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarForByte[Int(b)]) ?? "?") }
        return String(s)
    }
}
