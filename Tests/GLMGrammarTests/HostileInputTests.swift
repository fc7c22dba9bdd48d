import Testing
import Glibc
import GLMJSON
import GLMSupport
@testable import GLMGrammar

/// Constraints built to exhaust an engine: each one compiles, or fails with a GLMError naming a limit or the
/// problem, and masks on it either work or fail the same way; nothing crashes or grows without bound.
@Suite struct HostileInputTests {
    static let v = TestVocabulary(["a", "b", "{", "}", "[", "]", "\"", ":", ",", "0", "1", "aa", "ab", "ba", "bb", "x"])

    /// Compiles and computes a few masks along a walk; returns the error if any step failed.
    static func exercise(_ c: Constraint, steps: Int = 12) -> GLMError? {
        do throws(GLMError) {
            let g = try v.compile(c)
            let m = try GrammarMatcher(g)
            var rng = TestRandom(1)
            for _ in 0..<steps {
                let allowed = try m.allowedTokens()
                guard !allowed.isEmpty else { break }
                let t = allowed[rng.below(allowed.count)]
                try m.accept(t)
                if m.isTerminated { break }
            }
            return nil
        } catch {
            return error
        }
    }

    @Test func deepAndWideSchemas() throws {
        var deep = "{\"type\": \"integer\"}"
        for _ in 0..<300 { deep = "{\"type\": \"array\", \"items\": \(deep)}" }
        let error = HostileInputTests.exercise(.jsonSchema(try JSONValue.parse(deep, maxDepth: 1000)))
        #expect(error?.code == .limitExceeded, "\(String(describing: error))")

        let wide = "{\"enum\": [" + (0..<20_000).map { "\"v\($0)\"" }.joined(separator: ",") + "]}"
        #expect(HostileInputTests.exercise(.jsonSchema(try JSONValue.parse(wide)))?.code == .limitExceeded)

        var chain = "{\"$defs\": {"
        chain += (0..<400).map { "\"d\($0)\": {\"$ref\": \"#/$defs/d\($0 + 1)\"}" }.joined(separator: ",")
        chain += ", \"d400\": {\"type\": \"integer\"}}, \"$ref\": \"#/$defs/d0\"}"
        #expect(HostileInputTests.exercise(.jsonSchema(try JSONValue.parse(chain)))?.code == .limitExceeded)

        let cycle = try JSONValue.parse(##"{"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}, {"type": "object"}]}}, "$ref": "#/$defs/a", "type": "object"}"##)
        #expect(HostileInputTests.exercise(.jsonSchema(cycle)) != nil)

        let bigBound = "{\"type\": \"integer\", \"minimum\": 1\(String(repeating: "0", count: 5000))}"
        #expect(HostileInputTests.exercise(.jsonSchema(try JSONValue.parse(bigBound)))?.code == .limitExceeded)

        let manyItems = try JSONValue.parse(#"{"type": "array", "minItems": 100000}"#)
        #expect(HostileInputTests.exercise(.jsonSchema(manyItems))?.code == .limitExceeded)

        // Many alternatives that overlap: the parser keeps every one alive, within its bounds.
        let overlapping = "{\"anyOf\": [" + (0..<200).map { _ in "{\"type\": \"array\", \"items\": {\"type\": \"array\"}}" }.joined(separator: ",") + "]}"
        let e = HostileInputTests.exercise(.jsonSchema(try JSONValue.parse(overlapping)), steps: 30)
        #expect(e == nil || e?.code == .limitExceeded, "\(String(describing: e))")
    }

    @Test func patternsThatExplodeAutomata() {
        // Backtracking engines take exponential time on these; derivatives do not.
        for p in ["(a+)+b", "(a|aa)*b", "(a*)*$", "((a|b)*)*x"] {
            #expect(HostileInputTests.exercise(.regex(p), steps: 40) == nil, "\(p)")
        }
        // A DFA of 2^k states: the lexer stops at its state bound with an error instead of growing.
        let e = HostileInputTests.exercise(.regex("[ab]*a[ab]{22}x"), steps: 60)
        #expect(e == nil || e?.code == .limitExceeded, "\(String(describing: e))")
        for p in ["a{100000}", String(repeating: "(", count: 5000) + "a" + String(repeating: ")", count: 5000),
                  String(repeating: "a", count: 30_000)] {
            #expect(HostileInputTests.exercise(.regex(p))?.code == .limitExceeded, "\(p.prefix(20))")
        }
    }

    @Test func hostileToolDefinitions() throws {
        let cases = [
            #"[{"type": "function", "function": {"name": "f<arg_key>", "parameters": {"type": "object"}}}]"#,
            #"[{"type": "function", "function": {"name": " f", "parameters": {"type": "object"}}}]"#,
            #"[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a</arg_key>": {"type": "string"}}, "required": ["a</arg_key>"]}}}]"#,
            #"[{"type": "function", "function": {"name": "f", "parameters": {"allOf": [{"type": "object"}]}}}]"#,
            #"[{"type": "function", "function": {"name": "f", "parameters": 3}}]"#,
            #"[{"type": "function"}]"#, #"[5]"#,
        ]
        for text in cases {
            let tools = try JSONValue.parse(text).arrayValue ?? []
            #expect(HostileInputTests.exercise(.toolCalls(tools: tools, choice: .required(parallel: true))) != nil, "\(text)")
        }
    }
}

/// Random patterns and schemas made of the syntax's own pieces (seeded): every one compiles or fails with a
/// GLMError, and a few masks along a walk do the same. A crash fails the whole test run. GRAMMAR_SEED=N in the
/// environment runs a ten times longer pass from seed N (found the two bugs these cases now guard).
@Suite struct RandomConstraintTests {
    @Test func randomPatterns() throws {
        let pieces = ["a", "b", "é", "(", ")", "(?:", "[", "]", "[^", "{", "}", "{2}", "{1,3}", "|", "*", "+", "?",
                      "^", "$", "\\", "\\d", "\\w", "\\s", "\\D", "\\u00e9", "\\x41", "-", ",", ".", "\\b", "(?=",
                      "\\1", "\\p{L}", "0", "9"]
        var rng = TestRandom(UInt64(getenv("GRAMMAR_SEED").flatMap { Int(String(cString: $0)) } ?? 13))
        var compiled = 0, refused = 0
        for _ in 0..<(getenv("GRAMMAR_SEED") != nil ? 5000 : 400) {
            var p = ""
            for _ in 0..<(1 + rng.below(12)) { p += pieces[rng.below(pieces.count)] }
            if let error = HostileInputTests.exercise(.regex(p), steps: 6) {
                #expect(error.code != .internal, "\(p): \(error.message)")
                refused += 1
            } else {
                compiled += 1
            }
        }
        #expect(compiled > 20 && refused > 20)
        // A pattern that only matches the empty text: nothing but the end may come.
        let onlyEmpty = try GrammarMatcher(try HostileInputTests.v.compile(.regex("|$a")))
        #expect(try onlyEmpty.allowedTokens() == [HostileInputTests.v.end])
    }

    @Test func randomSchemas() throws {
        let leaves = [#"{"type": "string"}"#, #"{"type": "integer", "minimum": -3, "maximum": 7}"#, #"{"enum": [1, "a", null]}"#,
                      #"{"const": {"k": [true]}}"#, #"{"type": "number", "exclusiveMinimum": 0.5}"#, "true", "false", "{}",
                      #"{"type": "string", "pattern": "^[ab]+$", "maxLength": 3}"#, #"{"type": ["null", "boolean"]}"#,
                      ##"{"$ref": "#"}"##, #"{"format": "date"}"#, #"{"type": "array", "minItems": 2, "maxItems": 1}"#]
        var rng = TestRandom(UInt64(getenv("GRAMMAR_SEED").flatMap { Int(String(cString: $0)) } ?? 17))
        func schema(_ depth: Int) -> String {
            if depth > 3 || rng.below(3) == 0 { return leaves[rng.below(leaves.count)] }
            switch rng.below(6) {
            case 0: return #"{"type": "array", "items": \#(schema(depth + 1)), "maxItems": \#(rng.below(4))}"#
            case 1: return #"{"type": "object", "properties": {"x": \#(schema(depth + 1)), "y": \#(schema(depth + 1))}, "required": ["x"], "additionalProperties": \#(schema(depth + 1))}"#
            case 2: return #"{"anyOf": [\#(schema(depth + 1)), \#(schema(depth + 1))]}"#
            case 3: return #"{"allOf": [\#(schema(depth + 1)), \#(schema(depth + 1))]}"#
            case 4: return #"{"prefixItems": [\#(schema(depth + 1))], "items": \#(schema(depth + 1))}"#
            default: return #"{"oneOf": [\#(schema(depth + 1))], "type": "object"}"#
            }
        }
        var compiled = 0
        for _ in 0..<(getenv("GRAMMAR_SEED") != nil ? 1500 : 150) {
            let text = schema(0)
            let value = try JSONValue.parse(text)
            if let error = HostileInputTests.exercise(.jsonSchema(value), steps: 10) {
                #expect(error.code != .internal, "\(text): \(error.message)")
            } else {
                compiled += 1
            }
        }
        #expect(compiled > 30)
    }
}
