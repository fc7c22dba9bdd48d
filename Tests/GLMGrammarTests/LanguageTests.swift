import Testing
import GLMJSON
import GLMSupport
@testable import GLMGrammar

/// What each construct accepts and refuses, checked on whole texts (a fresh matcher fed the text's bytes, then
/// asked whether the output may end). Expectations are computed independently (integer arithmetic, explicit
/// lists of valid and invalid strings).
@Suite struct LanguageTests {
    static let v = TestVocabulary(["a"])

    static func accepts(_ grammar: CompiledGrammar, _ text: String) throws -> Bool {
        let m = try GrammarMatcher(grammar)
        return try m.accept(bytes: Array(text.utf8)) && m.canEnd()
    }

    static func schema(_ json: String, whitespace: Int = 0) throws -> CompiledGrammar {
        try v.compile(.jsonSchema(try JSONValue.parse(json)), whitespace: whitespace)
    }

    @Test func integerBoundsAreExact() throws {
        let bounds: [(String, Int?, Int?)] = [
            (#""minimum": -7, "maximum": 12"#, -7, 12), (#""exclusiveMinimum": -1, "exclusiveMaximum": 100"#, 0, 99),
            (#""minimum": 0"#, 0, nil), (#""maximum": -3"#, nil, -3), (#""minimum": 2.5, "maximum": 9.5"#, 3, 9),
            (#""minimum": 95, "maximum": 1005"#, 95, 1005), (#""exclusiveMaximum": 0"#, nil, -1),
        ]
        var checked = 0
        for (keywords, lo, hi) in bounds {
            let g = try LanguageTests.schema(#"{"type": "integer", \#(keywords)}"#)
            for n in -120...1200 where n % 7 == 0 || abs(n) < 20 || n == 1005 || n == 1006 || n == 95 || n == 94 {
                let expected = (lo.map { n >= $0 } ?? true) && (hi.map { n <= $0 } ?? true)
                #expect(try LanguageTests.accepts(g, String(n)) == expected, "\(keywords): \(n)")
                checked += 1
            }
            for bad in ["01", "-0", "+1", "1.0", "1e2", "", "-"] {
                #expect(!(try LanguageTests.accepts(g, bad)), "\(keywords): \(bad)")
            }
        }
        // Bounds beyond 64 bits keep their exact digits.
        let big = try LanguageTests.schema(#"{"type": "integer", "minimum": 18446744073709551616}"#)
        #expect(try LanguageTests.accepts(big, "18446744073709551616"))
        #expect(!(try LanguageTests.accepts(big, "18446744073709551615")))
        #expect(checked > 500)
    }

    @Test func numberBoundsCompareAsDecimals() throws {
        // Values in hundredths: the expectation is integer arithmetic on the scaled value.
        let bounds: [(String, Int?, Bool, Int?, Bool)] = [
            (#""minimum": 0"#, 0, false, nil, false), (#""exclusiveMinimum": 0"#, 0, true, nil, false),
            (#""minimum": -1.5, "maximum": 2.25"#, -150, false, 225, false),
            (#""exclusiveMinimum": -1.5, "exclusiveMaximum": 2.25"#, -150, true, 225, true),
            (#""minimum": 0.05, "maximum": 0.5"#, 5, false, 50, false),
            (#""maximum": -0.25"#, nil, false, -25, false),
        ]
        var checked = 0
        for (keywords, lo, loEx, hi, hiEx) in bounds {
            let g = try LanguageTests.schema(#"{"type": "number", \#(keywords)}"#)
            for cents in stride(from: -320, through: 320, by: 5) {
                let ok = (lo.map { loEx ? cents > $0 : cents >= $0 } ?? true) && (hi.map { hiEx ? cents < $0 : cents <= $0 } ?? true)
                let sign = cents < 0 ? "-" : ""
                let a = abs(cents)
                for text in ["\(sign)\(a / 100).\(a % 100 < 10 ? "0" : "")\(a % 100)", "\(sign)\(a / 100).\(a % 100 < 10 ? "0" : "")\(a % 100)0"] {
                    #expect(try LanguageTests.accepts(g, text) == ok, "\(keywords): \(text)")
                    checked += 1
                }
                if a % 100 == 0 {
                    #expect(try LanguageTests.accepts(g, "\(sign)\(a / 100)") == ok, "\(keywords): \(sign)\(a / 100)")
                }
            }
        }
        #expect(checked > 1000)
        let any = try LanguageTests.schema(#"{"type": "number"}"#)
        for good in ["0", "-0", "1.5", "-2e10", "3E-2", "12345678901234567890123", "1234567890123456.5"] {
            #expect(try LanguageTests.accepts(any, good), "\(good)")
        }
        // Python must read every number back as a finite float: no 3-digit exponents, no fraction after 17 digits.
        for bad in ["01", "1.", ".5", "1e", "1e100", "12345678901234567.5", "+1", "NaN", "Infinity"] {
            #expect(!(try LanguageTests.accepts(any, bad)), "\(bad)")
        }
    }

    @Test func formats() throws {
        let cases: [(String, [String], [String])] = [
            ("date", ["2024-02-29", "2000-02-29", "2023-12-31", "0001-01-01", "1999-04-30"],
             ["2023-02-29", "1900-02-29", "2023-13-01", "2023-04-31", "0000-01-01", "2023-1-01", "2023-01-00"]),
            ("time", ["23:59:59Z", "00:00:00+05:30", "12:34:56.789-08:00"], ["24:00:00Z", "12:60:00Z", "12:00:00", "1:00:00Z"]),
            ("date-time", ["2023-06-01T12:00:00Z", "2024-02-29t00:00:00.5+01:00"], ["2023-06-01 12:00:00Z", "2023-06-01T12:00Z"]),
            ("uuid", ["123e4567-e89b-12d3-a456-426614174000", "ABCDEFAB-0000-0000-0000-000000000000"],
             ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"]),
            ("ipv4", ["0.0.0.0", "255.255.255.255", "192.168.1.10"], ["256.0.0.0", "01.2.3.4", "1.2.3", "1.2.3.4.5"]),
            ("ipv6", ["::", "::1", "1::", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1", "fe80::1:2"],
             ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":1:2"]),
            ("email", ["a@b.com", "first.last+tag@sub.example.org"], ["ab.com", "a@", "@b.com", "a@b.c-"]),
            ("uri", ["https://example.com/a/b?q=1#frag", "mailto:x@y.org", "urn:isbn:0451450523", "file:///etc/hosts"],
             ["example.com", "1http://x", "http://exa mple.com", "h://%zz"]),
            ("hostname", ["example.com", "a-b.c-d.org", "localhost"], ["-a.com", "a_b.com", "example..com", "1.2.3.4"]),
        ]
        for (format, good, bad) in cases {
            let g = try LanguageTests.schema(#"{"type": "string", "format": "\#(format)"}"#)
            for s in good { #expect(try LanguageTests.accepts(g, "\"\(s)\""), "\(format) should accept \(s)") }
            for s in bad { #expect(!(try LanguageTests.accepts(g, "\"\(s)\"")), "\(format) should refuse \(s)") }
        }
    }

    @Test func patternsSearchAndSatisfyBothDialects() throws {
        let search = try LanguageTests.schema(#"{"type": "string", "pattern": "ab+c"}"#)
        #expect(try LanguageTests.accepts(search, #""xxabbbcyy""#))
        #expect(!(try LanguageTests.accepts(search, #""xxacyy""#)))
        let anchored = try LanguageTests.schema(#"{"type": "string", "pattern": "^[a-c]{2}$"}"#)
        #expect(try LanguageTests.accepts(anchored, #""ab""#))
        #expect(!(try LanguageTests.accepts(anchored, #""abc""#)))
        // \d is ASCII (a subset of Python's Unicode digits); \D excludes every Unicode digit.
        let digits = try LanguageTests.schema(#"{"type": "string", "pattern": "^\\d+$"}"#)
        #expect(try LanguageTests.accepts(digits, #""0123""#))
        #expect(!(try LanguageTests.accepts(digits, "\"\u{0663}\"")))
        let nonDigits = try LanguageTests.schema(#"{"type": "string", "pattern": "^\\D$"}"#)
        #expect(try LanguageTests.accepts(nonDigits, #""x""#))
        #expect(!(try LanguageTests.accepts(nonDigits, "\"\u{0663}\"")))
        #expect(!(try LanguageTests.accepts(nonDigits, #""7""#)))
        // `.` matches no line terminator of either dialect.
        let dot = try LanguageTests.schema(#"{"type": "string", "pattern": "^.$"}"#)
        #expect(try LanguageTests.accepts(dot, #""é""#))
        for terminator in ["\\n", "\\r", "\\u2028"] { #expect(!(try LanguageTests.accepts(dot, "\"\(terminator)\""))) }
        // `$` inside a group: "the text ends here" (an empty string, or one not starting with a comma).
        let endInGroup = try LanguageTests.schema(#"{"type": "string", "pattern": "^([^,]|$)"}"#)
        for good in [#""""#, #""a,b""#, #""x""#] { #expect(try LanguageTests.accepts(endInGroup, good), "\(good)") }
        for bad in [#"",a""#, #"",""#] { #expect(!(try LanguageTests.accepts(endInGroup, bad)), "\(bad)") }
        let neverMatches = try LanguageTests.v.compile(.regex("a(b$|c)d|a"))
        #expect(try LanguageTests.accepts(neverMatches, "acd"))
        #expect(try LanguageTests.accepts(neverMatches, "a"))
        #expect(!(try LanguageTests.accepts(neverMatches, "abd")))
        #expect(!(try LanguageTests.accepts(neverMatches, "ab")))
        // A pattern with a length bound: both hold.
        let both = try LanguageTests.schema(#"{"type": "string", "pattern": "^a", "maxLength": 3}"#)
        #expect(try LanguageTests.accepts(both, #""abc""#))
        #expect(!(try LanguageTests.accepts(both, #""abcd""#)))
        #expect(!(try LanguageTests.accepts(both, #""bc""#)))
    }

    @Test func unsupportedPatternsNameTheConstruct() {
        let cases: [(String, String)] = [("(a)\\1", "backreference"), ("a(?=b)", "lookahead"), ("(?<=a)b", "lookbehind"),
                                         ("\\bword", "word boundary"), ("a++", "possessive"), ("a(^b)", "'^'"),
                                         ("\\p{L}", "property")]
        for (pattern, fragment) in cases {
            do {
                _ = try LanguageTests.v.compile(.regex(pattern))
                Issue.record("accepted \(pattern)")
            } catch {
                #expect(error.code == .unsupported, "\(pattern): \(error.message)")
                #expect(error.message.contains(fragment), "\(pattern): \(error.message)")
            }
        }
        for malformed in ["(a", "a)", "[a", "*a", "a{3,2}", "\\x4"] {
            #expect(throws: GLMError.self, "\(malformed)") { _ = try LanguageTests.v.compile(.regex(malformed)) }
        }
    }

    @Test func stringsCountCharactersAndAcceptEveryEscape() throws {
        let g = try LanguageTests.schema(#"{"type": "string", "minLength": 2, "maxLength": 2}"#)
        for good in [#""éé""#, #""\u00e9\n""#, #""\"\\""#, #""a\/""#, "\"\u{1F600}x\""] {
            #expect(try LanguageTests.accepts(g, good), "\(good)")
        }
        for bad in [#""abc""#, #""a""#, "\"a\u{0001}\"", #""\x""#, #""\ud83d\ude00""#] {
            #expect(!(try LanguageTests.accepts(g, bad)), "\(bad)")
        }
    }

    @Test func objectsFollowTheSchemaOrderAndItsKeys() throws {
        let g = try LanguageTests.schema(#"{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["b"], "additionalProperties": {"type": "boolean"}}"#)
        for good in [#"{"b":"x"}"#, #"{"a":1,"b":"x"}"#, #"{"b":"x","c":true}"#, #"{"a":1,"b":"","z":false,"y":true}"#] {
            #expect(try LanguageTests.accepts(g, good), "\(good)")
        }
        for bad in [#"{"b":"x","a":1}"#, #"{"a":1}"#, #"{"b":"x","c":1}"#, #"{"b":"x","a":true}"#, #"{"b":"x","b":"y"}"#,
                    #"{"b":"x","\u0061":true}"#, #"{}"#] {
            #expect(!(try LanguageTests.accepts(g, bad)), "\(bad)")
        }
        let closed = try LanguageTests.schema(#"{"properties": {"a": {"const": 1}}, "additionalProperties": false}"#)
        #expect(try LanguageTests.accepts(closed, "{}"))
        #expect(!(try LanguageTests.accepts(closed, #"{"b":1}"#)))
        // A recursive schema through $defs.
        let tree = try LanguageTests.schema(##"{"$defs": {"n": {"type": "object", "properties": {"c": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "additionalProperties": false}}, "$ref": "#/$defs/n"}"##)
        #expect(try LanguageTests.accepts(tree, #"{"c":[{"c":[{},{"c":[]}]}]}"#))
        #expect(!(try LanguageTests.accepts(tree, #"{"c":[{"d":1}]}"#)))
    }

    @Test func whitespaceIsBounded() throws {
        let g = try LanguageTests.schema(#"{"type": "array", "items": {"type": "integer"}}"#, whitespace: 3)
        #expect(try LanguageTests.accepts(g, "[ 1,\n\t2 ]  "))
        #expect(!(try LanguageTests.accepts(g, "[    1]")))
        #expect(!(try LanguageTests.accepts(g, "[1]    ")))
        let compact = try LanguageTests.schema(#"{"type": "array"}"#, whitespace: 0)
        #expect(!(try LanguageTests.accepts(compact, "[ ]")))
        #expect(try LanguageTests.accepts(compact, "[[],{}]"))
    }

    @Test func strictRefusesWhatItCannotEnforceAndLaxListsIt() throws {
        let schema = try JSONValue.parse(#"{"type": "array", "uniqueItems": true, "items": {"type": "string", "format": "color"}}"#)
        do {
            _ = try LanguageTests.v.compile(.jsonSchema(schema), strict: true)
            Issue.record("strict accepted uniqueItems")
        } catch {
            #expect(error.code == .unsupported && error.message.contains("uniqueItems"), "\(error.message)")
        }
        let lax = try LanguageTests.v.compile(.jsonSchema(schema))
        #expect(lax.notes.contains { $0.contains("uniqueItems") } && lax.notes.contains { $0.contains("color") }, "\(lax.notes)")
    }

    @Test func contradictionsAndBadReferencesAreErrors() {
        for bad in [#"{"type": "string", "minLength": 3, "maxLength": 2}"#, #"{"allOf": [{"type": "string"}, {"type": "integer"}]}"#,
                    ##"{"$ref": "#/$defs/missing"}"##, #"{"$ref": "http://x/y.json"}"#, #"{"type": "wrong"}"#, #"{"enum": 3}"#,
                    ##"{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##] {
            #expect(throws: GLMError.self, "\(bad)") { _ = try LanguageTests.schema(bad) }
        }
    }
}
