import GLMJSON
import GLMParsers
import GLMSupport
import Testing

/// Behaviour outside the recorded cases, following the same vLLM 0.33 rules (and libglm's documented choices).
@Suite struct ParserBehaviourTests {
    static let weatherTools: JSONValue = ParserCase.all.first { $0.name == "single_tool_call_after_reasoning" }?.record["tools"] ?? .null

    private func parse(_ text: String, thinking: Bool = true, parseToolCalls: Bool = true) throws -> ParsedOutput {
        try parseOutput(text, options: OutputParserOptions(tools: Self.weatherTools, thinking: thinking,
                                                           parseToolCalls: parseToolCalls, toolCallIDSeed: 3))
    }

    private func arguments(_ output: ParsedOutput) -> [String] { output.toolCalls.map(\.arguments) }

    @Test func thinkingOffStillParsesCallsAndKeepsThinkTagsAsText() throws {
        let output = try parse("a</think>b<think>c<tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value></tool_call>",
                               thinking: false)
        #expect(output.reasoning == nil)
        #expect(output.content == "a</think>b<think>c")
        #expect(arguments(output) == [#"{"city": "Oslo"}"#])
    }

    /// Content a response_format constrained (issue 13): no tag is read once in content, so JSON holding markup
    /// comes back as written; the reasoning before `</think>` is still reasoning.
    @Test func verbatimContentReadsNoTags() throws {
        let json = #"{"a": "<think>x</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value></tool_call>"}"#
        for thinking in [false, true] {
            var options = OutputParserOptions(tools: Self.weatherTools, thinking: thinking, toolCallIDSeed: 3)
            options.verbatimContent = true
            let output = try parseOutput((thinking ? "r</think>" : "") + json, options: options)
            #expect(output.content == json)
            #expect(output.toolCalls.isEmpty)
            #expect(output.reasoning == (thinking ? "r" : nil))
        }
    }

    @Test func thinkTagInContentReopensReasoning() throws {
        let output = try parse("r1 </think>A<think> r2</think>C")
        #expect(output.reasoning == "r1  r2")
        #expect(output.content == "AC")
    }

    @Test func toolChoiceNoneDropsCallsButKeepsSurroundingText() throws {
        let text = "</think> Hi <tool_call>get_weather<arg_key>city</arg_key><arg_value>X</arg_value></tool_call> bye "
        let output = try parse(text, parseToolCalls: false)
        #expect(output == ParsedOutput(reasoning: nil, content: " Hi  bye ", toolCalls: []))
        let (events, _, streamed) = try stream(chunked(text) { 2 }, options: OutputParserOptions(
            tools: Self.weatherTools, parseToolCalls: false))
        #expect(streamed == output)
        #expect(events.allSatisfy { if case .content = $0 { true } else { false } })
    }

    @Test func truncationInsideAValueKeepsWhatWasWritten() throws {
        let output = try parse("</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Ro")
        #expect(arguments(output) == [#"{"city": "Ro"}"#])
        let typed = try parse("</think><tool_call>get_weather<arg_key>days</arg_key><arg_value>1")
        #expect(arguments(typed) == [#"{"days": 1}"#])
    }

    @Test func truncationInsideTheNameOrAKey() throws {
        #expect(arguments(try parse("</think><tool_call>get_weather")) == ["{}"])
        #expect(try parse("</think><tool_call>get_wea").toolCalls.isEmpty)
        #expect(arguments(try parse("</think><tool_call>get_weather<arg_key>ci")) == ["{}"])
    }

    @Test func aTagPrefixAtTheEndIsText() throws {
        #expect(try parse("</think>Hello <tool_ca").content == "Hello <tool_ca")
        #expect(try parse("Almost </thi").reasoning == "Almost </thi")
    }

    @Test func whitespaceOnlyContent() throws {
        #expect(try parse("</think>\n\n").content == "\n\n")
        #expect(try parse("</think>\n<tool_call>get_weather</tool_call>\n").content == nil)
        // An undeclared call still drops leading whitespace-only content (vLLM opens a slot for it).
        #expect(try parse("</think>\n<tool_call>nope</tool_call>").content == nil)
        #expect(try parse("</think> Hi <tool_call>nope</tool_call>").content == " Hi ")
    }

    @Test func textBetweenPairsAndBrokenPairsAreSkipped() throws {
        // A pair broken by text between </arg_key> and <arg_value> is skipped (vLLM's backtracking regex would
        // glue it into the next key instead); text between pairs is ignored; the name must match exactly.
        let pairs = "<arg_key>city</arg_key>x<arg_value>A</arg_value>noise<arg_key> city </arg_key>\n <arg_value> B </arg_value></tool_call>"
        #expect(arguments(try parse("</think><tool_call>get_weather" + pairs)) == [#"{"city": " B "}"#])
        #expect(try parse("</think><tool_call>get_weather junk" + pairs).toolCalls.isEmpty)
    }

    @Test func tagsInsideAValueAreValueText() throws {
        let output = try parse("</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>a<arg_key>b</arg_key><think>c</arg_value></tool_call>")
        #expect(arguments(output) == [#"{"city": "a<arg_key>b</arg_key><think>c"}"#])
    }

    @Test func idsAreReproducibleWithASeedAndRandomWithout() throws {
        let text = "</think><tool_call>get_weather</tool_call><tool_call>get_weather</tool_call>"
        let a = try parse(text).toolCalls.map(\.id)
        let b = try parse(text).toolCalls.map(\.id)
        #expect(a == b)
        #expect(a.count == 2 && a[0] != a[1])
        for id in a {
            #expect(id.hasPrefix("call_") && id.count == 29)
            #expect(id.dropFirst(5).allSatisfy { "0123456789abcdef".contains($0) })
        }
        let unseeded1 = try parseOutput(text, options: OutputParserOptions(tools: Self.weatherTools)).toolCalls.map(\.id)
        let unseeded2 = try parseOutput(text, options: OutputParserOptions(tools: Self.weatherTools)).toolCalls.map(\.id)
        #expect(unseeded1 != unseeded2)
    }

    @Test func optionsFromJSON() throws {
        let options = try OutputParserOptions(json: JSONValue.parse(
            #"{"tools": [], "tool_choice": "none", "thinking": false, "keep_undeclared_tools": true, "tool_call_id_seed": 9}"#))
        #expect(options.tools == .array([]))
        #expect(!options.parseToolCalls && !options.thinking && options.keepUndeclaredTools && options.toolCallIDSeed == 9)
        let defaults = try OutputParserOptions(json: .object(JSONObject()))
        #expect(defaults.tools == nil && defaults.parseToolCalls && defaults.thinking && !defaults.keepUndeclaredTools)
        #expect(try OutputParserOptions(json: JSONValue.parse(#"{"tool_choice": {"type": "function"}}"#)).parseToolCalls)
        let bad = [#"{"tool": []}"#, #"{"tools": {}}"#, #"{"thinking": 1}"#, #"{"tool_choice": "sometimes"}"#,
                   #"{"tool_call_id_seed": -1}"#, #"[]"#]
        for text in bad {
            #expect(throws: GLMError.self, "\(text)") { try OutputParserOptions(json: JSONValue.parse(text)) }
        }
    }

    @Test func malformedToolsAreErrorsThatNameTheEntry() throws {
        let tools = try JSONValue.parse(#"[{"type": "function", "function": {"name": "ok"}}, 3]"#)
        do {
            _ = try parseOutput("x", options: OutputParserOptions(tools: tools))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("tools[1]"))
        }
        let nameless = try JSONValue.parse(#"[{"type": "function", "function": {"parameters": {}}}]"#)
        #expect(throws: GLMError.self) { try StreamingOutputParser(options: OutputParserOptions(tools: nameless)) }
        // Bare (unwrapped) tools are accepted.
        let bare = try JSONValue.parse(#"[{"name": "f", "parameters": {"properties": {"n": {"type": "integer"}}}}]"#)
        let output = try parseOutput("</think><tool_call>f<arg_key>n</arg_key><arg_value>2</arg_value></tool_call>",
                                     options: OutputParserOptions(tools: bare))
        #expect(arguments(output) == [#"{"n": 2}"#])
    }

    @Test func openAIMessageAndEventShapes() throws {
        let output = try parse("Plan.</think>Ok.<tool_call>get_weather<arg_key>days</arg_key><arg_value>2</arg_value></tool_call>")
        let id = try #require(output.toolCalls.first?.id)
        #expect(output.openAIMessage.pythonJSON == #"{"role": "assistant", "content": "Ok.", "reasoning_content": "Plan.", "tool_calls": [{"id": ""#
                + id + #"", "type": "function", "function": {"name": "get_weather", "arguments": "{\"days\": 2}"}}]}"#)
        #expect(ParsedOutput(reasoning: nil, content: nil, toolCalls: []).openAIMessage.pythonJSON
                == #"{"role": "assistant", "content": null, "reasoning_content": null, "tool_calls": []}"#)
        #expect(ParserEvent.reasoning("r").json.pythonJSON == #"{"reasoning_content": "r"}"#)
        #expect(ParserEvent.content("c").json.pythonJSON == #"{"content": "c"}"#)
        #expect(ParserEvent.toolCallStart(index: 1, id: "call_x", name: "f").json.pythonJSON
                == #"{"tool_calls": [{"index": 1, "id": "call_x", "type": "function", "function": {"name": "f"}}]}"#)
        #expect(ParserEvent.toolCallArguments(index: 1, delta: "{\"").json.pythonJSON
                == #"{"tool_calls": [{"index": 1, "function": {"arguments": "{\""}}]}"#)
    }

    @Test func finishIsFinal() throws {
        let parser = try StreamingOutputParser(options: OutputParserOptions(thinking: false))
        #expect(parser.feed("Hel") == [.content("Hel")])
        #expect(parser.feed("lo <") == [.content("lo ")])
        let (events, output) = parser.finish()
        #expect(events == [.content("<")])
        #expect(output.content == "Hello <")
        #expect(parser.feed("more").isEmpty)
        let again = parser.finish()
        #expect(again.events.isEmpty && again.output == output)
    }
}
