import GLMJSON
import GLMParsers
import Testing

/// One argument-typing case from coercion_cases.jsonl (CPython's int/float/json run through vLLM's typing rule,
/// made by tools/make_parser_coercion_fixtures.py).
struct CoercionCase: CustomTestStringConvertible {
    let record: JSONValue
    var testDescription: String { record["name"]?.stringValue ?? "?" }

    static let all: [CoercionCase] = (try? readJSONLines("coercion_cases.jsonl").map(CoercionCase.init)) ?? []

    /// A tool `f` whose parameter `v` has the case's schema.
    var options: OutputParserOptions {
        let schema = record["schema"] ?? .null
        let tools = JSONValue.array([.object(JSONObject([
            ("type", .string("function")),
            ("function", .object(JSONObject([
                ("name", .string("f")),
                ("parameters", .object(JSONObject([("type", .string("object")),
                                                   ("properties", .object(JSONObject([("v", schema)])))]))),
            ]))),
        ]))])
        return OutputParserOptions(tools: tools, thinking: false, toolCallIDSeed: 1)
    }

    var modelOutput: String {
        "<tool_call>f<arg_key>v</arg_key><arg_value>\(record["text"]?.stringValue ?? "")</arg_value></tool_call>"
    }
}

@Suite struct SchemaTypingTests {
    @Test func fixtureLoaded() {
        #expect(CoercionCase.all.count == 60)
    }

    @Test(arguments: CoercionCase.all)
    func valueIsTypedAsVLLMTypesIt(_ testCase: CoercionCase) throws {
        let expected = try #require(testCase.record["arguments"]?.stringValue)
        let batch = try parseOutput(testCase.modelOutput, options: testCase.options)
        #expect(batch.toolCalls.map(\.arguments) == [expected])
        let (_, _, streamed) = try stream(chunked(testCase.modelOutput) { 1 }, options: testCase.options)
        #expect(streamed == batch)
    }

    @Test func undeclaredToolKeptOnRequestWithStringValues() throws {
        let testCase = try #require(ParserCase.all.first { $0.name == "no_schema_for_tool_all_values_deserialized" })
        var options = testCase.options
        #expect(try parseOutput(testCase.modelOutput, options: options).toolCalls.isEmpty)
        options.keepUndeclaredTools = true
        let output = try parseOutput(testCase.modelOutput, options: options)
        #expect(output.toolCalls.map(\.name) == ["unknown_tool"])
        #expect(output.toolCalls.map(\.arguments) == [#"{"x": "123", "y": "abc", "z": "true"}"#])
    }

    @Test func keysOutsideTheSchemaStayStrings() throws {
        let tools = try JSONValue.parse(#"[{"type": "function", "function": {"name": "f", "parameters": {"properties": {"n": {"type": "integer"}}}}}]"#)
        let output = try parseOutput("<tool_call>f<arg_key>n</arg_key><arg_value>1</arg_value><arg_key>m</arg_key><arg_value>2</arg_value></tool_call>",
                                     options: OutputParserOptions(tools: tools, thinking: false))
        #expect(output.toolCalls.map(\.arguments) == [#"{"n": 1, "m": "2"}"#])
    }
}
