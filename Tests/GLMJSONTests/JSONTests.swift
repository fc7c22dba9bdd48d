import Testing
@testable import GLMJSON
import GLMSupport

@Suite struct JSONTests {
    @Test func pythonFloatRepr() {
        let cases: [(Double, String)] = [
            (1.0, "1.0"), (0.1, "0.1"), (1e-7, "1e-07"), (1e21, "1e+21"), (1e16, "1e+16"),
            (1e15, "1000000000000000.0"), (123456789.0, "123456789.0"), (0.0001, "0.0001"), (0.00001, "1e-05"),
            (-2.5, "-2.5"), (-0.0, "-0.0"), (0.0, "0.0"), (1.5e300, "1.5e+300"), (Double.leastNonzeroMagnitude, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (3.14159, "3.14159"), (100000.0, "100000.0"),
            (1.2345e-5, "1.2345e-05"), (12345678901234567.0, "1.2345678901234568e+16"), (0.3, "0.3"),
        ]
        for (x, expected) in cases { #expect(PythonFloat.repr(x) == expected, "\(x)") }
        #expect(PythonFloat.repr(.nan) == "nan")
        #expect(PythonFloat.jsonRepr(-.infinity) == "-Infinity")
    }

    @Test func roundTripKeepsOrderAndNumberSpelling() throws {
        let text = #"{"b": 1, "a": [1.0, 1e5, -0, 12345678901234567890123, true, null], "c": {"z": "x\ny\u00e9\ud83d\ude00"}}"#
        let v = try JSONValue.parse(text)
        #expect(v.pythonJSON == #"{"b": 1, "a": [1.0, 100000.0, 0, 12345678901234567890123, true, null], "c": {"z": "x\nyé😀"}}"#)
        #expect(JSONWriter(ensureASCII: true).string(v).hasSuffix(#""x\ny\u00e9\ud83d\ude00"}}"#))
        #expect(v.compactJSON == #"{"b":1,"a":[1.0,100000.0,0,12345678901234567890123,true,null],"c":{"z":"x\nyé😀"}}"#)
    }

    @Test func indentMatchesPython() throws {
        let v = try JSONValue.parse(#"{"a": [1, {"b": []}], "c": {}}"#)
        #expect(JSONWriter(indent: "  ").string(v) == "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    }\n  ],\n  \"c\": {}\n}")
    }

    @Test func duplicateKeysKeepFirstPositionLastValue() throws {
        let v = try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(v.pythonJSON == #"{"a": 3, "b": 2}"#)
    }

    @Test func malformedInputIsAnErrorWithPosition() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "01", "tru", "{\"a\":1}x", "\"\\x\"", "[\"\u{01}\"]"] {
            #expect(throws: GLMErrorProbe.self) { try GLMErrorProbe.wrap { try JSONValue.parse(bad) } }
        }
        do {
            _ = try JSONValue.parse("{\n  \"a\": tru\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("line 2"))
        }
    }

    @Test func deepNestingIsRejectedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: GLMErrorProbe.self) { try GLMErrorProbe.wrap { try JSONValue.parse(deep) } }
    }
}

/// Lets `#expect(throws:)` check for any GLMError from a typed-throws call.
struct GLMErrorProbe: Error {
    static func wrap(_ body: () throws -> JSONValue) throws {
        do { _ = try body() } catch { throw GLMErrorProbe() }
    }
}

/// One string rule for every JSON reader in the project (JSONEscape.decodeString): the tokenizer's scanner uses
/// it too (Tests/GLMTokenizerTests/JSONStringRuleTests.swift checks the same cases there).
@Suite struct JSONStringRuleTests {
    /// (JSON text, the decoded string or nil for an error), written from RFC 8259 and serde_json's behaviour.
    static let cases: [(String, String?)] = [
        (#""plain""#, "plain"),
        (#""\u00e9\u4e2d\ud83c\udf89""#, "é中🎉"),
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
        ("\"caf\u{E9} \u{1F389}\"", "café 🎉"),
        (#""\ud83c""#, nil),              // lone high surrogate at the end
        (#""\ud83cx""#, nil),             // high surrogate followed by a plain character
        (#""\ud83c\u0041""#, nil),        // high surrogate followed by a non-surrogate escape
        (#""\udf89""#, nil),              // lone low surrogate
        (#""\u12G4""#, nil),              // not four hex digits
        (#""\x""#, nil),                  // unknown escape
        ("\"tab\there\"", nil),           // raw control character
        (#""unterminated"#, nil),
    ]

    @Test func theParserFollowsTheRule() throws {
        #expect(JSONStringRuleTests.cases.count >= 10)
        for (text, expected) in JSONStringRuleTests.cases {
            let parsed = try? JSONValue.parse(text)
            #expect(parsed?.stringValue == expected, "\(text)")
        }
        // Ill-formed UTF-8 inside a string is an error too (bytes no Swift literal can hold).
        for bytes: [UInt8] in [[0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xFF, 0x22]] {
            #expect(throws: GLMError.self) {
                _ = try bytes.withUnsafeBufferPointer { buffer throws(GLMError) in try JSONValue.parse(bytes: buffer) }
            }
        }
    }
}

/// Python's `str.isspace()` and `str.strip()`, shared by the templates and the parsers (PythonString): the
/// whitespace set is CPython's own list (`[c for c in range(0x110000) if chr(c).isspace()]`), checked over every
/// scalar; strip cases as Python answers them.
@Suite struct PythonStringTests {
    static let pythonSpaces: Set<UInt32> = [
        0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
        0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
    ]

    @Test func isSpaceIsPythonsOverEveryScalar() {
        #expect(PythonStringTests.pythonSpaces.count == 29)
        var disagreements: [UInt32] = []
        for v in UInt32(0)...0x10FFFF where PythonString.isSpace(v) != PythonStringTests.pythonSpaces.contains(v) {
            disagreements.append(v)
        }
        #expect(disagreements.isEmpty)
    }

    @Test func stripIsPythons() {
        // ("  x ".strip(), ...) as CPython 3.11 prints them.
        #expect(PythonString.strip(" \t\n x y \u{3000}\u{85}") == "x y")
        #expect(PythonString.strip("\u{200B}x\u{200B}") == "\u{200B}x\u{200B}")   // ZWSP is not whitespace
        #expect(PythonString.strip(" \u{301}x ") == "\u{301}x")                   // a combining mark stays
        #expect(PythonString.strip("  a  ", leading: true, trailing: false) == "a  ")
        #expect(PythonString.strip("  a  ", leading: false, trailing: true) == "  a")
        #expect(PythonString.strip("xxaxyx", characters: "xy") == "a")
        #expect(PythonString.strip("\u{A0}\u{A0}") == "")
        #expect(PythonString.strip("") == "")
    }
}
