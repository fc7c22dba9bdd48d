import GLMJSON
import GLMParsers
import Testing

/// Issue 10, items 3, 4 and 6: tag text inside a state that cannot end on it, output cut inside a closing tag,
/// and content whitespace when vLLM's batch and streamed answers differ. Every case runs batch and through every
/// chunking the recorded cases get; the expected messages are written out by hand from vLLM 0.33's documented
/// behaviour (values are the raw text between `<arg_value>` and the first `</arg_value>`; calls keep the text
/// the model wrote) and libglm's documented choices (see OutputParser.swift).
@Suite struct ParserFidelityTests {
    /// `write_file(path: string, content: string)`, `get_weather(city: string, unit: string, days: integer)`,
    /// `do_types(..., o: object, ...)` and `get_time()`: the tools of the recorded cases.
    static let tools: JSONValue = {
        var all: [JSONValue] = []
        for name in ["string_value_with_markup", "single_tool_call_after_reasoning", "schema_typed_values", "zero_argument_tool_call"] {
            if case .array(let list)? = ParserCase.all.first(where: { $0.name == name })?.record["tools"] { all += list }
        }
        return .array(all)
    }()

    private func check(_ text: String, thinking: Bool = true, _ expected: String) throws {
        let options = OutputParserOptions(tools: Self.tools, thinking: thinking, toolCallIDSeed: 5)
        let output = try checkEveryChunking(text, options: options, tokenChunks: tokenLikeChunks(text))
        #expect(try fixtureShape(output) == JSONValue.parse(expected), "\(text)")
        // Argument text exactly as json.dumps spells it.
        if case .array(let calls)? = try JSONValue.parse(expected)["tool_calls"] {
            #expect(output.toolCalls.map(\.arguments) == calls.compactMap { $0["arguments"]?.pythonJSON })
        }
    }

    // MARK: item 3: inside a value only </arg_value> closes; inside a key only </arg_key>

    @Test func aValueThatQuotesTheFormatKeepsIt() throws {
        try check(#"</think>Sure.<tool_call>write_file<arg_key>path</arg_key><arg_value>FORMAT.md</arg_value><arg_key>content</arg_key><arg_value>Calls look like <tool_call>NAME ... </tool_call>, reasoning ends at </think>.</arg_value></tool_call>"#,
                  #"{"reasoning": null, "content": "Sure.", "tool_calls": [{"name": "write_file", "arguments": {"path": "FORMAT.md", "content": "Calls look like <tool_call>NAME ... </tool_call>, reasoning ends at </think>."}}]}"#)
    }

    @Test func aValueThatQuotesArgumentTagsKeepsThem() throws {
        try check(#"</think><tool_call>write_file<arg_key>content</arg_key><arg_value>pairs: <arg_key>k</arg_key><arg_value>v</tool_call><tool_call>x</arg_value><arg_key>path</arg_key><arg_value>a.md</arg_value></tool_call>Done."#,
                  #"{"reasoning": null, "content": "Done.", "tool_calls": [{"name": "write_file", "arguments": {"content": "pairs: <arg_key>k</arg_key><arg_value>v</tool_call><tool_call>x", "path": "a.md"}}]}"#)
    }

    @Test func aTypedValueThatQuotesTagsIsDecodedWhole() throws {
        try check(#"</think><tool_call>do_types<arg_key>o</arg_key><arg_value>{"doc": "<tool_call>f</tool_call> then </think>"}</arg_value></tool_call>"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "do_types", "arguments": {"o": {"doc": "<tool_call>f</tool_call> then </think>"}}}]}"#)
    }

    @Test func aKeyEndsOnlyAtItsClosingTag() throws {
        // The key text is "a</tool_call>b": not a declared parameter, so its value stays a string.
        try check(#"</think><tool_call>get_weather<arg_key>a</tool_call>b</arg_key><arg_value>1</arg_value><arg_key>days</arg_key><arg_value>2</arg_value></tool_call>"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "get_weather", "arguments": {"a</tool_call>b": "1", "days": 2}}]}"#)
    }

    @Test func reasoningThatQuotesCallTagsKeepsThem() throws {
        // In reasoning only </think>, <think> (dropped) and <tool_call> (which ends reasoning, as in vLLM 0.33) count.
        try check(#"A value ends at </arg_value>, a call at </tool_call>.</think>Answer."#,
                  #"{"reasoning": "A value ends at </arg_value>, a call at </tool_call>.", "content": "Answer.", "tool_calls": []}"#)
    }

    @Test func aValueIsNeverCutInADroppedCall() throws {
        // An undeclared tool's call is dropped whole, quoted tags and all; the text after it is content.
        try check(#"</think>Hi<tool_call>nope<arg_key>k</arg_key><arg_value>x</tool_call>y</arg_value></tool_call> there"#,
                  #"{"reasoning": null, "content": "Hi there", "tool_calls": []}"#)
    }

    // MARK: item 4: output cut inside a closing tag

    @Test func cutInsideTheValuesClosingTagKeepsTheTextBeforeIt() throws {
        try check(#"</think><tool_call>write_file<arg_key>content</arg_key><arg_value>hello world</arg_va"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "write_file", "arguments": {"content": "hello world"}}]}"#)
        try check(#"</think><tool_call>write_file<arg_key>content</arg_key><arg_value>hello world<"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "write_file", "arguments": {"content": "hello world"}}]}"#)
    }

    @Test func cutInsideATypedValuesClosingTagTypesTheTextBeforeIt() throws {
        try check(#"</think><tool_call>get_weather<arg_key>days</arg_key><arg_value>12</arg_value"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "get_weather", "arguments": {"days": 12}}]}"#)
    }

    @Test func cutInsideTheCallsClosingTagAfterTheName() throws {
        try check(#"Time?</think><tool_call>get_time</tool_c"#,
                  #"{"reasoning": "Time?", "content": null, "tool_calls": [{"name": "get_time", "arguments": {}}]}"#)
    }

    @Test func aValueCutWithoutAnyTagKeepsItsText() throws {
        // The text a stream has already sent stays in the message (documented deviation 3).
        try check(#"</think><tool_call>write_file<arg_key>content</arg_key><arg_value>a < b"#,
                  #"{"reasoning": null, "content": null, "tool_calls": [{"name": "write_file", "arguments": {"content": "a < b"}}]}"#)
    }

    // MARK: item 6: content whitespace equals vLLM's batch or its streamed answer

    @Test func textAfterACallGivesTheStreamedContentUnstripped() throws {
        // vLLM: batch "Checking." (loses " Done. "), stream "Checking.  Done. ". The text is kept, so the stream's.
        try check("</think>Checking. <tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call> Done. ",
                  #"{"reasoning": null, "content": "Checking.  Done. ", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}"#)
    }

    @Test func onlyWhitespaceAfterACallGivesTheBatchContentStripped() throws {
        // vLLM: batch "Checking." (stripped), stream "Checking. \n". Nothing is lost, so the batch's.
        try check("</think> Checking. <tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call>\n",
                  #"{"reasoning": null, "content": "Checking.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}"#)
    }

    @Test func contentAfterACallInsideReasoningKeepsItsLeadingSpace() throws {
        try check("Maybe <tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value></tool_call> no.</think>Final answer.\n",
                  #"{"reasoning": "Maybe", "content": " no.Final answer.\n", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#)
    }
}
