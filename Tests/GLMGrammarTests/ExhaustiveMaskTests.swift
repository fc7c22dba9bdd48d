import Testing
import GLMJSON
import GLMSupport
@testable import GLMGrammar

/// Masks checked against a brute-force reference on small vocabularies: the reference knows the constraint's
/// language as an explicit finite set of byte strings (written out here, not derived from the engine), and a
/// token is allowed exactly when the text so far plus its bytes is a prefix of one of them; the end token
/// exactly when the text is one of them. Every step of many random walks compares the whole vocabulary.
@Suite struct ExhaustiveMaskTests {
    /// The reference: a language that answers "is this a prefix of a member" and "is this a member".
    protocol Language {
        func isPrefix(_ text: [UInt8]) -> Bool
        func isMember(_ text: [UInt8]) -> Bool
    }

    /// A finite language as its set of byte strings.
    struct FiniteLanguage: Language {
        let members: Set<[UInt8]>
        let prefixes: Set<[UInt8]>

        init<S: Sequence>(_ strings: S) where S.Element == String {
            let m = Set(strings.map { Array($0.utf8) })
            members = m
            var p = Set<[UInt8]>()
            for s in m { for k in 0...s.count { p.insert(Array(s[..<k])) } }
            prefixes = p
        }

        func isPrefix(_ text: [UInt8]) -> Bool { prefixes.contains(text) }
        func isMember(_ text: [UInt8]) -> Bool { members.contains(text) }
    }

    /// Documents as token lists (each token a list of alternative spellings), with up to `whitespace`
    /// whitespace characters before every token and after the last.
    struct TokenLanguage: Language {
        let documents: [[[[UInt8]]]]
        let whitespace: Int
        static let spaces: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]

        init(_ docs: [[[String]]], whitespace: Int) {
            documents = docs.map { $0.map { $0.map { Array($0.utf8) } } }
            self.whitespace = whitespace
        }

        private func match(_ text: ArraySlice<UInt8>, _ doc: [[[UInt8]]], _ index: Int, whole: Bool) -> Bool {
            // The gap: try every amount of whitespace up to the bound.
            var rest = text
            for used in 0...whitespace {
                if used > 0 {
                    guard let b = rest.first, TokenLanguage.spaces.contains(b) else { return false }
                    rest = rest.dropFirst()
                }
                if index == doc.count {
                    if rest.isEmpty { return true }
                    continue
                }
                if rest.isEmpty && !whole { return true }
                for spelling in doc[index] {
                    if rest.count >= spelling.count {
                        if rest.prefix(spelling.count).elementsEqual(spelling),
                           match(rest.dropFirst(spelling.count), doc, index + 1, whole: whole) { return true }
                    } else if !whole && spelling.starts(with: rest) {
                        return true
                    }
                }
            }
            return false
        }

        func isPrefix(_ text: [UInt8]) -> Bool { documents.contains { match(text[...], $0, 0, whole: false) } }
        func isMember(_ text: [UInt8]) -> Bool { documents.contains { match(text[...], $0, 0, whole: true) } }
    }

    static func allowed(_ language: any Language, after text: [UInt8], in v: TestVocabulary) -> Set<Int32> {
        var out = Set<Int32>()
        for (id, piece) in v.pieces.enumerated() where Int32(id) != v.end && v.vocabulary.isText(Int32(id)) {
            if language.isPrefix(text + piece) { out.insert(Int32(id)) }
        }
        if language.isMember(text) { out.insert(v.end) }
        return out
    }

    /// Walks `walks` random paths through the reference language, comparing the engine's mask with the
    /// reference's at every step; returns the number of steps compared.
    @discardableResult
    static func compare(_ grammar: CompiledGrammar, _ language: any Language, _ v: TestVocabulary, walks: Int,
                        seed: UInt64, maxSteps: Int = 40) throws -> Int {
        var rng = TestRandom(seed)
        var steps = 0
        for _ in 0..<walks {
            let m = try GrammarMatcher(grammar)
            var text: [UInt8] = []
            for _ in 0..<maxSteps {
                let expected = ExhaustiveMaskTests.allowed(language, after: text, in: v)
                let actual = try m.allowedSet()
                #expect(actual == expected, "after \(String(decoding: text, as: UTF8.self).debugDescription): extra \(actual.subtracting(expected).map { String(decoding: v.pieces[Int($0)], as: UTF8.self) }), missing \(expected.subtracting(actual).map { String(decoding: v.pieces[Int($0)], as: UTF8.self) })")
                steps += 1
                if actual != expected || expected.isEmpty { break }
                let choices = expected.sorted()
                let t = choices[rng.below(choices.count)]
                try m.accept(t)
                if t == v.end { break }
                text += v.pieces[Int(t)]
            }
        }
        return steps
    }

    // MARK: regular expressions

    /// A finite regular language written as explicit alternatives, independent of the pattern syntax.
    indirect enum Ref {
        case lit(String)
        case oneOf([String])
        case seq([Ref])
        case alt([Ref])
        case rep(Ref, Int, Int)

        var strings: Set<String> {
            switch self {
            case .lit(let s): return [s]
            case .oneOf(let list): return Set(list)
            case .seq(let parts):
                var out: Set<String> = [""]
                for p in parts {
                    let next = p.strings
                    out = Set(out.flatMap { a in next.map { a + $0 } })
                }
                return out
            case .alt(let parts): return parts.reduce(into: Set<String>()) { $0.formUnion($1.strings) }
            case .rep(let r, let lo, let hi):
                let one = r.strings
                var power: Set<String> = [""]
                var out: Set<String> = lo == 0 ? [""] : []
                for k in 1...max(hi, 1) where hi >= 1 {
                    power = Set(power.flatMap { a in one.map { a + $0 } })
                    if k >= lo { out.formUnion(power) }
                }
                return out
            }
        }
    }

    static let regexVocabulary = TestVocabulary(
        ["a", "b", "c", "ab", "ba", "abc", "ca", "é", "0", "1", "9", "a0", "é1", "aé", "cc", "x", "(", ")", "|", "abab"],
        raw: [[0xC3], [0xA9], [0xA9, 0x30], [0x61, 0xC3]], special: ["<|s|>", "ab<s>"])

    @Test func regexMasksMatchTheLanguageExactly() throws {
        let v = ExhaustiveMaskTests.regexVocabulary
        let digits = (0...9).map { String($0) }
        let cases: [(String, Ref)] = [
            ("(ab|a[é0-9]){1,3}c?", .seq([.rep(.alt([.lit("ab"), .seq([.lit("a"), .oneOf(["é"] + digits)])]), 1, 3),
                                          .rep(.lit("c"), 0, 1)])),
            ("^(?:é|b)+$|c{2}", .alt([.rep(.oneOf(["é", "b"]), 1, 4), .lit("cc")])),
            ("a?b?c?", .seq([.rep(.lit("a"), 0, 1), .rep(.lit("b"), 0, 1), .rep(.lit("c"), 0, 1)])),
            ("\\(a\\|b\\)|[\\d]{1,2}", .alt([.lit("(a|b)"), .rep(.oneOf(digits), 1, 2)])),
        ]
        var steps = 0
        for (pattern, reference) in cases {
            var language = reference.strings
            if pattern.hasPrefix("^(?:é|b)+$") {
                // Unbounded: the reference holds lengths up to 4, enough for walks that stop at 4 characters.
                language = language.filter { $0.count <= 4 }
            }
            let grammar = try v.compile(.regex(pattern))
            steps += try ExhaustiveMaskTests.compare(grammar, FiniteLanguage(language), v, walks: 60, seed: 7,
                                                     maxSteps: pattern.hasPrefix("^(?:é|b)+$") ? 3 : 40)
        }
        #expect(steps > 200)
    }

    // MARK: JSON

    /// JSON encodings of a string literal's content: each character raw (when JSON allows it), as its short
    /// escape, or as \u with four hex digits in either case.
    static func encodings(_ s: String) -> [String] {
        var out = [""]
        for u in s.unicodeScalars {
            var forms: [String] = []
            if u.value >= 0x20 && u != "\"" && u != "\\" { forms.append(String(u)) }
            let short: [Unicode.Scalar: String] = ["\"": "\\\"", "\\": "\\\\", "/": "\\/", "\n": "\\n", "\t": "\\t"]
            if let e = short[u] { forms.append(e) }
            if u.value < 0x10000 {
                let hex = String(u.value, radix: 16)
                let padded = String(repeating: "0", count: 4 - hex.count) + hex
                forms.append("\\u" + padded)
                if padded.uppercased() != padded { forms.append("\\u" + padded.uppercased()) }
            }
            out = out.flatMap { prefix in forms.map { prefix + $0 } }
        }
        return out.map { "\"" + $0 + "\"" }
    }

    static let jsonVocabulary = TestVocabulary(
        ["{", "}", "[", "]", ",", ":", "\"", "a", "b", "k", "x", "\\", "u", "0", "1", "2", "6", "7", "8", "9", "-",
         "e", "E", "A", "B", "c", "d", "f", "l", "n", "r", "s", "t", "true", "false", "null", "nu", "ll", "\"a\"",
         "\":", "\",", "\"}", "{\"", "\"]", "[{", "}]", "}\n", " ", "\n", "\t", " \n", "12", "-1", "10", "1,",
         ",\"", "\\u00", "e9", "E9", "61", "62", "6b", "6B", "78", "é", "é\"", "]\n", "[]"],
        raw: [[0xC3], [0xA9], [0xA9, 0x22]], special: ["<|x|>"])

    @Test func jsonSchemaMasksMatchTheLanguageExactly() throws {
        let v = ExhaustiveMaskTests.jsonVocabulary
        let enc = ExhaustiveMaskTests.encodings
        func key(_ k: String) -> [String] { enc(k) }
        // Object with an enum property and an optional boolean, no other keys.
        let schemaA = try JSONValue.parse(#"{"type":"object","properties":{"a":{"enum":[1,"x",null]},"b":{"type":"boolean"}},"required":["a"],"additionalProperties":false}"#)
        var docsA: [[[String]]] = []
        for value in [["1"], enc("x"), ["null"]] {
            docsA.append([["{"], key("a"), [":"], value, ["}"]])
            for b in ["true", "false"] {
                docsA.append([["{"], key("a"), [":"], value, [","], key("b"), [":"], [b], ["}"]])
            }
        }
        // Bounded integers in an array of at most two.
        let schemaB = try JSONValue.parse(#"{"type":"array","items":{"type":"integer","minimum":-2,"maximum":12},"maxItems":2}"#)
        let ints = (-2...12).map { [String($0)] }
        var docsB: [[[String]]] = [[["["], ["]"]]]
        for n in ints {
            docsB.append([["["], n, ["]"]])
            for m in ints { docsB.append([["["], n, [","], m, ["]"]]) }
        }
        // anyOf of a string enum (a multi-byte character) and booleans.
        let schemaC = try JSONValue.parse(#"{"anyOf":[{"type":"string","enum":["é","ab"]},{"type":"boolean"}]}"#)
        let docsC: [[[String]]] = [[enc("é")], [enc("ab")], [["true"]], [["false"]]]
        // A tuple: a constant object, then an optional null.
        let schemaD = try JSONValue.parse(#"{"type":"array","prefixItems":[{"const":{"k":[true]}},{"type":"null"}],"items":false,"minItems":1}"#)
        let first: [[String]] = [["{"], key("k"), [":"], ["["], ["true"], ["]"], ["}"]]
        let docsD: [[[String]]] = [[["["]] + first + [["]"]], [["["]] + first + [[","], ["null"], ["]"]]]

        var steps = 0
        for whitespace in [0, 1] {
            for (schema, docs) in [(schemaA, docsA), (schemaB, docsB), (schemaC, docsC), (schemaD, docsD)] {
                let grammar = try v.compile(.jsonSchema(schema), whitespace: whitespace)
                let language = TokenLanguage(docs, whitespace: whitespace)
                steps += try ExhaustiveMaskTests.compare(grammar, language, v, walks: whitespace == 0 ? 40 : 15,
                                                         seed: UInt64(steps + 1))
            }
        }
        #expect(steps > 600)
    }

    /// GLM-4.7's reasoning before the constrained part: free text up to `</think>`, without `<tool_call>`.
    @Test func reasoningThenRegex() throws {
        let v = TestVocabulary(["</think>", "</", "think", ">", "a", "b", "<tool_call>", "<", "x", "ab", "a</think>",
                                "</think>ab", "\n"])
        let grammar = try v.compile(.regex("ab?"), reasoning: true)
        let m = try GrammarMatcher(grammar)
        let ids = { (s: String) in Int32(v.pieces.firstIndex(of: Array(s.utf8))!) }
        var allowed = try m.allowedSet()
        #expect(!allowed.contains(ids("<tool_call>")) && allowed.contains(ids("</think>")) && allowed.contains(ids("x")))
        #expect(allowed.contains(ids("</think>ab")) && !allowed.contains(v.end))
        for t in ["x", "\n", "</", "think"] { try m.accept(ids(t)) }
        allowed = try m.allowedSet()
        #expect(allowed.contains(ids(">")) && allowed.contains(ids("ab")))
        try m.accept(ids(">"))
        allowed = try m.allowedSet()
        #expect(allowed == [ids("a"), ids("ab")])
    }
}
