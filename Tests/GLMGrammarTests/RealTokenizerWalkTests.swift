import Testing
import GLMJSON
import GLMParsers
import GLMSupport
import GLMTokenizer
@testable import GLMGrammar

/// Random walks through the masks with a real tokenizer (glm-tiny-chat's, 4,292 ids): every output the masks
/// allow must be complete and valid when the walk ends, and the GLM-4.7 output parser must read tool calls
/// back as the schema says. The walk picks uniformly among allowed ids, so nothing but the mask steers it.
@Suite struct RealTokenizerWalkTests {
    static let end: Int32 = 4256   // <|endoftext|>

    /// Walks until the end id or `limit` tokens; returns the text and whether it ended.
    static func walk(_ grammar: CompiledGrammar, _ tokenizer: Tokenizer, seed: UInt64,
                     limit: Int = 600) throws -> (String, Bool) {
        let m = try GrammarMatcher(grammar)
        var rng = TestRandom(seed)
        var ids: [Int32] = []
        for step in 0..<limit {
            var allowed = try m.allowedTokens()
            if allowed.isEmpty {
                let text = try tokenizer.decode(ids)
                Issue.record("no token allowed after \(text.debugDescription)")
                return (text, false)
            }
            // Past half the budget, end when possible so most walks complete.
            if step > limit / 2, allowed.contains(end) { allowed = [end] }
            let t = allowed[rng.below(allowed.count)]
            try m.accept(t)
            if t == end { return (try tokenizer.decode(ids), true) }
            ids.append(t)
        }
        return (try tokenizer.decode(ids), false)
    }

    static func options(reasoning: Bool = false) -> ConstraintOptions {
        var o = ConstraintOptions()
        o.endTokenIDs = [end]
        o.reasoning = reasoning
        return o
    }

    @Test func jsonWalksEndInParseableJSON() throws {
        let tokenizer = try Fixtures.glmTokenizer.get()
        let vocabulary = try TokenVocabulary.of(tokenizer)
        var completed = 0
        for (name, schema) in try Fixtures.schemas().prefix(12) {
            let grammar = try ConstraintCompiler.compile(.jsonSchema(schema), vocabulary: vocabulary, options: RealTokenizerWalkTests.options())
            for seed in 0..<3 {
                let (text, ended) = try RealTokenizerWalkTests.walk(grammar, tokenizer, seed: UInt64(seed))
                guard ended else { continue }
                completed += 1
                #expect(throws: Never.self, "\(name): \(text)") { _ = try JSONValue.parse(text) }
            }
        }
        #expect(completed >= 12)
    }

    @Test func toolCallsReadBackAsTheirSchemas() throws {
        let tokenizer = try Fixtures.glmTokenizer.get()
        let vocabulary = try TokenVocabulary.of(tokenizer)
        let tools = try JSONValue.parse(#"""
        [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 12}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "units": {"enum": ["c", "f"]}, "detail": {"type": ["string", "null"], "maxLength": 5},
            "tags": {"type": "array", "items": {"type": "number"}, "maxItems": 2}}, "required": ["city", "days"],
            "additionalProperties": false}}},
         {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}]
        """#)
        var calls = 0
        for (choice, reasoning) in [(ToolCallChoice.required(parallel: true), true), (.named("get_weather"), false)] {
            let grammar = try ConstraintCompiler.compile(.toolCalls(tools: tools.arrayValue!, choice: choice),
                                                         vocabulary: vocabulary, options: RealTokenizerWalkTests.options(reasoning: reasoning))
            for seed in 0..<6 {
                let (text, ended) = try RealTokenizerWalkTests.walk(grammar, tokenizer, seed: UInt64(seed), limit: 900)
                guard ended else { continue }
                let parsed = try parseOutput(text, options: OutputParserOptions(tools: tools, thinking: reasoning))
                #expect(!parsed.toolCalls.isEmpty, "\(text)")
                if case .named = choice { #expect(parsed.toolCalls.count == 1 && parsed.toolCalls[0].name == "get_weather") }
                for call in parsed.toolCalls {
                    calls += 1
                    let args = try JSONValue.parse(call.arguments)
                    guard call.name == "get_weather" else {
                        #expect(call.name == "ping")
                        continue
                    }
                    guard case .string(let city)? = args["city"], case .integer(let days)? = args["days"] else {
                        Issue.record("\(call.arguments) from \(text)")
                        continue
                    }
                    #expect(city.count <= 12 && (1...7).contains(Int(days) ?? 0), "\(call.arguments)")
                    if let units = args["units"] { #expect(units == .string("c") || units == .string("f")) }
                    if let detail = args["detail"], detail != .null { #expect((detail.stringValue?.count ?? 99) <= 5) }
                    for key in args.objectValue?.keys ?? [] {
                        #expect(["city", "days", "units", "detail", "tags"].contains(key), "\(call.arguments)")
                    }
                }
            }
        }
        #expect(calls >= 4)
    }

    /// The vocabulary has ids that split UTF-8 characters and ids that run past the end of the value into
    /// whitespace; both must be allowed exactly where a valid output continues through them.
    @Test func tokensAcrossCharacterAndValueBoundaries() throws {
        let v = TestVocabulary(["\"", "é", "}", "}\n", "}\n\n\n", "{", "\"a\"", ":", "1", "\"é\"", "\"}"],
                               raw: [[0xC3], [0xA9, 0x22], [0xA9]])
        let g = try v.compile(.jsonSchema(try JSONValue.parse(#"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false}"#)), whitespace: 2)
        let m = try GrammarMatcher(g)
        func id(_ s: String) -> Int32 { Int32(v.pieces.firstIndex(of: Array(s.utf8))!) }
        for t in ["{", "\"a\"", ":", "\""] { try m.accept(id(t)) }
        var allowed = try m.allowedSet()
        #expect(allowed.contains(Int32(v.pieces.firstIndex(of: [0xC3])!)))
        #expect(!allowed.contains(Int32(v.pieces.firstIndex(of: [0xA9])!)))
        try m.accept(Int32(v.pieces.firstIndex(of: [0xC3])!))
        allowed = try m.allowedSet()
        #expect(allowed == [Int32(v.pieces.firstIndex(of: [0xA9])!), Int32(v.pieces.firstIndex(of: [0xA9, 0x22])!)])
        try m.accept(Int32(v.pieces.firstIndex(of: [0xA9, 0x22])!))
        allowed = try m.allowedSet()
        // "}\n" ends the value and starts the trailing whitespace; three newlines exceed the bound of two.
        #expect(allowed.contains(id("}")) && allowed.contains(id("}\n")) && !allowed.contains(id("}\n\n\n")))
        try m.accept(id("}\n"))
        #expect(try m.canEnd())
        #expect(try m.allowedSet().contains(v.end))
    }
}
