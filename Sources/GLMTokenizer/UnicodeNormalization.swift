// The standard library's canonical normalization (NFC/NFD) lives behind the `_Unicode` SPI; it is the same code
// `String` comparison uses, so it is always present without Foundation.
@_spi(_Unicode) import Swift

/// Unicode normalization forms as HF tokenizers applies them (NFC, NFD, NFKC, NFKD).
///
/// Canonical data comes from the standard library; compatibility decompositions from the generated
/// `CompatibilityDecompositions` table. NFKD(s) = NFD(⊕ NFKD(scalar)) and NFKC(s) = NFC(⊕ NFKD(scalar)): composing
/// or reordering after a per-scalar full compatibility decomposition gives the same result as decomposing the whole
/// string, because canonical decomposition of an already fully decomposed scalar is the identity.
public enum UnicodeNormalization {
    public static func nfc(_ text: String) -> String {
        String(decoding: text._nfcCodeUnits, as: UTF8.self)
    }

    public static func nfd(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text._nfd)
        return String(scalars)
    }

    public static func nfkc(_ text: String) -> String {
        nfc(compatibilityDecomposed(text))
    }

    public static func nfkd(_ text: String) -> String {
        nfd(compatibilityDecomposed(text))
    }

    /// `text` with every scalar that has a compatibility decomposition replaced by its full NFKD (not yet reordered).
    static func compatibilityDecomposed(_ text: String) -> String {
        // No scalar below U+00A0 has a compatibility decomposition.
        guard text.unicodeScalars.contains(where: { $0.value >= 0xA0 }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard scalar.value >= 0xA0, let range = decompositionRange(scalar.value) else {
                out.append(scalar)
                continue
            }
            for value in CompatibilityDecompositions.scalars[range] {
                if let replacement = Unicode.Scalar(value) { out.append(replacement) }
            }
        }
        return String(out)
    }

    /// The slice of `CompatibilityDecompositions.scalars` holding the NFKD of `value`, by binary search over the keys.
    private static func decompositionRange(_ value: UInt32) -> Range<Int>? {
        let keys = CompatibilityDecompositions.keys
        var low = 0, high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid] < value { low = mid + 1 } else { high = mid }
        }
        guard low < keys.count, keys[low] == value else { return nil }
        let offsets = CompatibilityDecompositions.offsets
        return Int(offsets[low])..<Int(offsets[low + 1])
    }
}
