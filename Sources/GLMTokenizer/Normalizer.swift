/// The text normalizers a byte-level BPE tokenizer.json may declare (HF `normalizers`), applied to the text
/// between added tokens before pre-tokenization.
enum NormalizerStep: Sendable {
    case nfc
    case nfd
    case nfkc
    case nfkd
    case lowercase
    case prepend(String)
    case replace(String, String)

    func apply(_ text: String) -> String {
        switch self {
        case .nfc:
            return UnicodeNormalization.nfc(text)
        case .nfd:
            return UnicodeNormalization.nfd(text)
        case .nfkc:
            return UnicodeNormalization.nfkc(text)
        case .nfkd:
            return UnicodeNormalization.nfkd(text)
        case .lowercase:
            return text.lowercased()
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let replacement):
            return replacingAll(text, pattern, replacement)
        }
    }

    private func replacingAll(_ text: String, _ pattern: String, _ replacement: String) -> String {
        guard !pattern.isEmpty else { return text }
        let source = Array(text.utf8), needle = Array(pattern.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(source.count)
        var i = 0
        while i < source.count {
            if i + needle.count <= source.count && source[i..<(i + needle.count)].elementsEqual(needle) {
                out.append(contentsOf: replacement.utf8)
                i += needle.count
            } else {
                out.append(source[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
