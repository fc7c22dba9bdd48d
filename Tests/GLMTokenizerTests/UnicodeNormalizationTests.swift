import GLMJSON
import GLMSupport
import GLMTokenizer
import Testing

/// NFC/NFD/NFKC/NFKD against Python's unicodedata on every table code point in context and on random mixes.
@Test func normalizationMatchesPythonUnicodedata() throws {
    let forms: [(String, (String) -> String)] = [
        ("nfc", UnicodeNormalization.nfc), ("nfd", UnicodeNormalization.nfd),
        ("nfkc", UnicodeNormalization.nfkc), ("nfkd", UnicodeNormalization.nfkd),
    ]
    var checked = 0, mismatches = 0
    for c in try jsonLines("normalization_cases.jsonl") {
        let text = try #require(c["text"]?.stringValue)
        for (form, normalize) in forms {
            // The fixture omits a form equal to the text itself.
            let expected = c[form]?.stringValue ?? text
            let got = normalize(text)
            // Compare scalars: Swift's String == is canonical equivalence, which would hide NFC/NFD differences.
            if !got.unicodeScalars.elementsEqual(expected.unicodeScalars) {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(form)(\(text.debugDescription)): got \(got.unicodeScalars.map { $0.value }) want \(expected.unicodeScalars.map { $0.value })")
                }
            }
            checked += 1
        }
    }
    #expect(checked >= 4 * 2900)
    #expect(mismatches == 0, "\(mismatches) of \(checked) normalizations differ from unicodedata")
}

@Test func compatibilityNormalizationExamples() {
    #expect(UnicodeNormalization.nfkc("ﬁ ² ① ㎏ Ⅻ ｶﾞ Ｈｉ").unicodeScalars.elementsEqual("fi 2 1 kg XII ガ Hi".unicodeScalars))
    #expect(UnicodeNormalization.nfkd("ｶﾞ").unicodeScalars.elementsEqual("\u{30AB}\u{3099}".unicodeScalars))
    #expect(UnicodeNormalization.nfd("\u{1E69}").unicodeScalars.elementsEqual("s\u{323}\u{307}".unicodeScalars))
    #expect(UnicodeNormalization.nfkc("\u{1E9B}\u{323}").unicodeScalars.elementsEqual("\u{1E69}".unicodeScalars))
    #expect(UnicodeNormalization.nfkc("plain ascii") == "plain ascii")
    #expect(UnicodeNormalization.nfkc("") == "")
}

@Test(arguments: ["nfkc", "nfkd-sequence"])
func normalizerEncodingMatchesHFTokenizers(name: String) throws {
    let tokenizer = try Tokenizer.load(path: fixturesDirectory + "/variants/\(name).json")
    var checked = 0, mismatches = 0
    for c in try jsonLines("normalizer_encode_cases.jsonl") where c["tokenizer"]?.stringValue == name {
        let text = c["text"]?.stringValue ?? ""
        let expected = ids(c["ids"])
        let got = try tokenizer.encode(text, addSpecialTokens: false)
        if got != expected {
            mismatches += 1
            if mismatches <= 5 { Issue.record("\(name): \(text.debugDescription)\n got \(got)\n want \(expected)") }
        }
        checked += 1
    }
    #expect(checked >= 300)
    #expect(mismatches == 0, "\(mismatches) of \(checked) strings differ from HF tokenizers")
}
