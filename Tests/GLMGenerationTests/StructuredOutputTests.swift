import Testing
import GLMJSON
import GLMParsers
import GLMSupport
@testable import GLMGeneration

/// response_format and tool_choice through the whole chat stack on the tiny model: the reply satisfies the
/// constraint whatever the sampler draws, and the rest of the request (max_tokens, streaming, the parsers) still
/// works as without a constraint.
@Suite(.serialized) struct StructuredOutputTests {
    static let weatherTools = try? JSONValue.parse(#"""
    [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["city", "days"], "additionalProperties": false}}},
     {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {
        "zone": {"enum": ["utc", "local"]}}, "required": ["zone"]}}}]
    """#)

    func run(_ fields: [(String, JSONValue)], user: String = "What's the weather in Paris?",
             onEvent: ((ChatEvent) -> Bool)? = nil) throws -> JSONValue {
        let fixture = try ChatFixture.load()
        let chat = try fixture.session(contextLength: 1024)
        var o = JSONObject([("messages", .array([.object(JSONObject([("role", .string("user")), ("content", .string(user))]))]))])
        for (k, v) in fields { o[k] = v }
        return try chat.complete(request: .object(o), onEvent: onEvent)
    }

    @Test func jsonSchemaRepliesParseAndHoldTheSchema() throws {
        let schema = try JSONValue.parse(#"{"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0, "maximum": 120}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}}, "required": ["name", "age"], "additionalProperties": false}"#)
        var complete = 0
        for seed in 0..<6 {
            for thinking in [false, true] {
                let response = try run([
                    ("response_format", .object(JSONObject([("type", .string("json_schema")),
                        ("json_schema", .object(JSONObject([("name", .string("p")), ("schema", schema)])))]))),
                    ("seed", JSONValue(seed)), ("temperature", .double(1.5)), ("max_tokens", JSONValue(400)),
                    ("chat_template_kwargs", .object(JSONObject([("enable_thinking", .bool(thinking))]))),
                ])
                guard finishReason(response) == "stop" else { continue }
                complete += 1
                let content = message(response)?["content"]?.stringValue ?? ""
                let value = try JSONValue.parse(content)
                guard case .string(let name)? = value["name"], case .integer(let age)? = value["age"] else {
                    Issue.record("missing fields: \(content)")
                    continue
                }
                #expect(name.count <= 8 && (0...120).contains(Int(age) ?? -1), "\(content)")
                let keys = Set(value.objectValue?.keys ?? [])
                #expect(keys.isSubset(of: ["name", "age", "tags"]), "\(content)")
            }
        }
        #expect(complete >= 6)
    }

    @Test func requiredAndNamedToolChoices() throws {
        guard let tools = StructuredOutputTests.weatherTools else { Issue.record("tools did not parse"); return }
        var calls = 0
        for seed in 0..<4 {
            for choice: JSONValue in [.string("required"), try JSONValue.parse(#"{"type": "function", "function": {"name": "get_time"}}"#)] {
                let response = try run([("tools", tools), ("tool_choice", choice), ("seed", JSONValue(seed)),
                                        ("temperature", .double(1.2)), ("max_tokens", JSONValue(500))])
                guard finishReason(response) == "tool_calls" else {
                    #expect(finishReason(response) == "length", "\(response.compactJSON)")
                    continue
                }
                let list = message(response)?["tool_calls"]?.arrayValue ?? []
                #expect(!list.isEmpty)
                if choice != .string("required") { #expect(list.count == 1) }
                for call in list {
                    calls += 1
                    let name = call["function"]?["name"]?.stringValue
                    let args = try JSONValue.parse(call["function"]?["arguments"]?.stringValue ?? "")
                    if choice != .string("required") { #expect(name == "get_time") }
                    if name == "get_time" {
                        #expect(args["zone"] == .string("utc") || args["zone"] == .string("local"), "\(args.compactJSON)")
                    } else {
                        #expect(name == "get_weather")
                        #expect(args["city"]?.stringValue != nil, "\(args.compactJSON)")
                        #expect((1...5).contains(args["days"]?.intValue ?? 0), "\(args.compactJSON)")
                    }
                }
            }
        }
        #expect(calls >= 4)
    }

    @Test func maxTokensCutsTheValueAndStreamingAddsUp() throws {
        var deltas = ""
        let response = try run([("response_format", .object(JSONObject([("type", .string("json_object"))]))),
                                ("max_tokens", JSONValue(3)), ("seed", JSONValue(1)),
                                ("chat_template_kwargs", .object(JSONObject([("enable_thinking", .bool(false))])))]) { event in
            if case .delta(let e) = event.kind, case .content(let text) = e { deltas += text }
            return true
        }
        #expect(finishReason(response) == "length")
        let content = message(response)?["content"]?.stringValue ?? ""
        #expect(deltas == content)
        // Three tokens of an object: whitespace, then "{" and what may follow it, never anything else first.
        #expect(content.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }.first.map { $0 == "{" } ?? true,
                "\(content.debugDescription)")
    }

    /// A mask is the same as -inf logits for the ids it refuses, put in before the chain: bias, penalties,
    /// temperature, top-k/top-p and the seeded draw then pick the same token either way.
    @Test func maskActsBeforeTheSamplerChain() {
        var parameters = SamplingParameters()
        parameters.temperature = 0.8
        parameters.topP = 0.9
        parameters.topK = 12
        parameters.presencePenalty = 0.5
        parameters.repetitionPenalty = 1.2
        parameters.logitBias = [3: 5, 7: -2]
        var masked = Sampler(parameters: parameters, seed: 42)
        var reference = Sampler(parameters: parameters, seed: 42)
        masked.begin(prompt: [1, 2, 3])
        reference.begin(prompt: [1, 2, 3])
        var state: UInt64 = 7
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        var draws = 0
        for _ in 0..<300 {
            let logits = (0..<100).map { _ in Float(next() % 1000) / 100 - 5 }
            var words: [UInt64] = [0, 0]
            for id in 0..<100 where next() % 3 == 0 { words[id >> 6] |= 1 << UInt64(id & 63) }
            if words == [0, 0] { words[0] = 1 }
            var row = logits
            for id in 0..<100 where (words[id >> 6] >> UInt64(id & 63)) & 1 == 0 { row[id] = -.infinity }
            let a = masked.sample(logits, allowed: words)
            let b = reference.sample(row)
            #expect(a == b)
            guard let t = a else { continue }
            #expect((words[t >> 6] >> UInt64(t & 63)) & 1 == 1)
            masked.accept(t)
            reference.accept(t)
            draws += 1
        }
        #expect(draws == 300)
    }

    @Test func stopStringsStillEndAConstrainedReply() throws {
        let schema = try JSONValue.parse(#"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"], "additionalProperties": false}"#)
        let response = try run([
            ("response_format", .object(JSONObject([("type", .string("json_schema")),
                ("json_schema", .object(JSONObject([("name", .string("s")), ("schema", schema)])))]))),
            ("stop", .array([.string("\"b\"")])), ("seed", JSONValue(3)), ("max_tokens", JSONValue(600)),
            ("chat_template_kwargs", .object(JSONObject([("enable_thinking", .bool(false))]))),
        ])
        let content = message(response)?["content"]?.stringValue ?? ""
        // Either the stop string cut the reply before "b", or the reply ran out of tokens first.
        #expect(!content.contains("\"b\""), "\(content)")
        #expect(finishReason(response) == "stop" || finishReason(response) == "length")
    }
}
