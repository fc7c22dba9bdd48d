import GLMJSON
import GLMSupport
import Testing
@testable import GLMTokenizer

/// The tokenizer's streaming scanner decodes strings by the same rule as the JSON parser (one shared decoder):
/// the same cases as Tests/GLMJSONTests' JSONStringRuleTests give the same answers here.
@Suite struct TokenizerJSONStringRuleTests {
    static let cases: [(String, String?)] = [
        (#""plain""#, "plain"),
        (#""\u00e9\u4e2d\ud83c\udf89""#, "é中🎉"),
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
        (#""\ud83c""#, nil),
        (#""\ud83c\u0041""#, nil),
        (#""\udf89""#, nil),
        ("\"tab\there\"", nil),
    ]

    @Test func theScannerFollowsTheSameRule() {
        for (text, expected) in TokenizerJSONStringRuleTests.cases {
            let bytes = Array(text.utf8)
            let scanned: String? = bytes.withUnsafeBufferPointer { buffer in
                var scanner = JSONScanner(bytes: buffer, path: "case")
                var out: [UInt8] = []
                guard (try? scanner.readString(into: &out)) != nil else { return nil }
                return String(decoding: out, as: UTF8.self)
            }
            let parsed = (try? JSONValue.parse(text))?.stringValue
            #expect(scanned == expected, "\(text)")
            #expect(scanned == parsed, "\(text): scanner and parser disagree")
        }
    }
}
