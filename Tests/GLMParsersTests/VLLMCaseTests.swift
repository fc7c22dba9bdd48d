import GLMJSON
import GLMParsers
import Testing

/// Where libglm's answer deliberately differs from a recorded vLLM 0.33 answer (see the top of OutputParser.swift).
/// `batch`: our final message where it differs from `expected`. `streamed`: what our events add up to where that
/// differs from `expected_streaming`. `deltas`: how our per-chunk deltas relate to `expected_stream_deltas`.
private enum DeltaRule {
    /// Equal, chunk for chunk.
    case equal
    /// vLLM's deltas are a prefix of ours: vLLM stops at an unterminated or repeated value, we finish the JSON.
    case vllmPrefixThen([String])
    /// Not compared chunk for chunk (vLLM matches these tags by token id; we match text, see
    /// `tags_split_across_text_chunks`, or vLLM streams calls it then drops); final and concatenation still are.
    case notCompared
}

private struct Deviation {
    var batch: String?
    var streamed: String?
    var deltas: DeltaRule = .equal
}

private let deviations: [String: Deviation] = [
    // vLLM's batch parse loses the text after the first call; its stream keeps it, and so do we in both modes,
    // to the byte (the leading space of " no." included): the message is vLLM's streamed answer.
    "text_after_tool_call": Deviation(
        batch: #"{"reasoning": null, "content": "Checking. Done.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}"#),
    "tool_call_inside_reasoning_not_parsed": Deviation(
        batch: #"{"reasoning": "Maybe", "content": " no.Final answer.", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#),
    // Inside a value only </arg_value> closes, so </tool_call> is value text and the value is still open at the
    // end, where it is kept: vLLM's batch gives {}, its stream `{"city": "Rome` (invalid JSON).
    "unclosed_arg_value_inside_complete_call": Deviation(
        batch: #"{"reasoning": null, "content": null, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome</tool_call>"}}]}"#,
        streamed: #"{"reasoning": null, "content": null, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome</tool_call>"}}]}"#,
        deltas: .vllmPrefixThen(["</tool_call>\"}"])),
    // The repeated key is written twice; json.loads reads it as vLLM's batch answer {"city": "B"}.
    "duplicate_keys_last_wins": Deviation(
        streamed: #"{"reasoning": null, "content": null, "tool_calls": [{"name": "get_weather", "arguments": {"city": "B"}}]}"#,
        deltas: .vllmPrefixThen(["\", \"city\": \"", "B", "\"}"])),
    // Calls that are dropped from the message are not streamed either.
    "no_tools_in_request_tool_text_is_content": Deviation(deltas: .notCompared),
    // Tags are matched as text, wherever the chunks were cut.
    "tags_split_across_text_chunks": Deviation(
        batch: #"{"reasoning": "Think.", "content": "Hi", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#,
        streamed: #"{"reasoning": "Think.", "content": "Hi ", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#,
        deltas: .notCompared),
]

@Suite struct VLLMCaseTests {
    @Test func fixtureHasEveryCase() {
        #expect(ParserCase.all.count == 26)
    }

    @Test(arguments: ParserCase.all)
    func batchMatchesVLLM(_ testCase: ParserCase) throws {
        let output = try parseOutput(testCase.modelOutput, options: testCase.options)
        let deviation = deviations[testCase.name]
        let expected = try deviation?.batch.map { try JSONValue.parse($0) } ?? testCase.record["expected"]
        #expect(try fixtureShape(output) == expected)
        // The arguments text is spelled as vLLM's json.dumps spells it (the repeated key aside).
        if testCase.name != "duplicate_keys_last_wins", case .array(let calls)? = expected?["tool_calls"] {
            #expect(output.toolCalls.map(\.arguments) == calls.compactMap { $0["arguments"]?.pythonJSON })
        }
    }

    @Test(arguments: ParserCase.all)
    func streamingMatchesVLLM(_ testCase: ParserCase) throws {
        let (events, deltas, output) = try stream(testCase.streamChunks, options: testCase.options)
        let deviation = deviations[testCase.name] ?? Deviation()
        let expectedStreamed = try deviation.streamed.map { try JSONValue.parse($0) } ?? testCase.record["expected_streaming"]
        #expect(try concatenatedShape(events) == expectedStreamed)
        #expect(output == (try parseOutput(testCase.modelOutput, options: testCase.options)))
        let recorded = testCase.record["expected_stream_deltas"]?.arrayValue ?? []
        switch deviation.deltas {
        case .equal:
            #expect(deltas == recorded)
        case .vllmPrefixThen(let extra):
            #expect(Array(deltas.prefix(recorded.count)) == recorded)
            let ours = deltas.dropFirst(recorded.count).compactMap { $0["tool_calls"]?.arrayValue?.first?["arguments"]?.stringValue }
            #expect(ours == extra)
        case .notCompared:
            break
        }
    }

    @Test func splitTagsNeverLeakIntoText() throws {
        let testCase = try #require(ParserCase.all.first { $0.name == "tags_split_across_text_chunks" })
        let (events, _, _) = try stream(testCase.streamChunks, options: testCase.options)
        for case .reasoning(let text) in events { #expect(!text.contains("<")) }
        for case .content(let text) in events { #expect(!text.contains("<")) }
    }

    @Test func noToolsInRequestStreamsNothingButDropsTheMarkup() throws {
        let testCase = try #require(ParserCase.all.first { $0.name == "no_tools_in_request_tool_text_is_content" })
        let (events, _, output) = try stream(testCase.streamChunks, options: testCase.options)
        #expect(events.isEmpty)
        #expect(output == ParsedOutput(reasoning: nil, content: nil, toolCalls: []))
    }
}
