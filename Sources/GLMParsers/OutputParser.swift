import GLMSupport
import GLMJSON

// GLM-4.7's reasoning and tool-call parser, batch (`parseOutput`) and streaming (`StreamingOutputParser`): what
// `vllm serve --reasoning-parser glm45 --tool-call-parser glm47` does in vLLM 0.33 (`vllm/parser/glm47_moe.py`).
// The cases in Tests/Fixtures/parsers/parser_cases.jsonl are vLLM 0.33's recorded answers.
//
// What matches vLLM:
// - With `thinking` (the prompt ended in `<think>`) the output is reasoning until `</think>`; a leading `<think>`
//   is dropped; `<tool_call>` inside reasoning ends it. Without `thinking` everything is content and the think
//   tags are text.
// - A call is `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>`; NAME is the stripped
//   text before the first `<arg_key>` or `</tool_call>`; keys are stripped, values are raw text up to the first
//   `</arg_value>` (any other tag inside a value, `</tool_call>` included, is value text; likewise inside a key
//   only `</arg_key>` counts), typed by the declared schema (see `SchemaCoercion`). A value decoded as a JSON
//   object or array is the model's JSON as `json.loads` reads it, its members untyped. Calls to undeclared tools
//   (or with no tools in the request) are dropped, and their markup never shows up in the content. A call cut
//   off by the end of the output is kept.
// - Text before, between and after calls is content. Reasoning is right-stripped; whitespace-only content is
//   dropped once a call starts; empty becomes null. With calls, the content is vLLM's batch answer (the text
//   before the first call, stripped) unless text follows the first call (see deviation 2).
// - Argument JSON is spelled as `json.dumps(..., ensure_ascii=False)`; the stream sends the name first, then
//   `{"key": "` pieces, string values character by character and other values once closed, as vLLM's deltas do.
//
// Where libglm deliberately differs, and why a user moving between libglm and vLLM is better served. Where
// vLLM's own batch and streamed answers differ, libglm gives one of them, to the byte, except where neither is
// a complete answer (3, 4).
// 1. Tags are recognised in the text, wherever chunks were cut (vLLM 0.33 recognises `<think>`, `</think>`,
//    `<tool_call>`, `</tool_call>` only as single token ids, so a tag spelled with ordinary tokens or re-chunked
//    by a proxy stays text: case `tags_split_across_text_chunks`, where vLLM returns the whole output as
//    reasoning in both modes). libglm's parser is given text, not token ids, so text is all it can go by; and a
//    reply whose calls vanish into the reasoning because a proxy re-chunked it is a failure, not a preference.
//    Text that merely quotes a tag stays text wherever the tag cannot apply (a value, a key, reasoning's
//    `</tool_call>`...). A chunk tail that could still start a tag is held back until the next chunk. The only
//    other text held back is what vLLM holds too: reasoning's trailing whitespace (sent if more reasoning
//    follows) and whitespace-only content (dropped if a call follows).
// 2. Text after the first call is kept. vLLM's batch parse loses it (cases `text_after_tool_call`,
//    `tool_call_inside_reasoning_not_parsed`), its stream keeps it; libglm's batch and stream both give vLLM's
//    streamed content then, unstripped (`" no.Final answer."`), so a client that switches between streaming and
//    not, or between vLLM streaming and libglm, sees the same text. When nothing but whitespace follows the
//    first call, the content is vLLM's batch answer (stripped), which then loses nothing.
// 3. A value still open at the end of the output is kept as it stands, minus a partial closing tag
//    (`<arg_value>hello world</arg_va` gives `"hello world"`); `</tool_call>` inside a value is value text, so
//    case `unclosed_arg_value_inside_complete_call` (`<arg_value>Rome</tool_call>`) gives
//    `{"city": "Rome</tool_call>"}`. vLLM's batch drops the argument (`{}`) and its stream leaves the invalid
//    `{"city": "Rome`: the stream has already sent the value's characters, so dropping them in the message would
//    contradict the stream, and leaving the JSON invalid breaks every client. libglm's stream is vLLM's deltas
//    plus the text vLLM swallowed and the closing `"}`.
// 4. A repeated key is written twice, `{"city": "A", "city": "B"}`: valid JSON that `json.loads` (and GLMJSON)
//    reads as vLLM's batch result `{"city": "B"}`; vLLM's stream stops at the repeat and leaves invalid JSON
//    (case `duplicate_keys_last_wins`). The first value was already streamed, so no stream can spell vLLM's
//    batch text; this is the one spelling that decodes to vLLM's batch value and extends what was sent.
// 5. Calls that will not be returned (no tools in the request, `tool_choice: "none"`) are not streamed either;
//    vLLM streams them and drops them from the final message (case `no_tools_in_request_tool_text_is_content`).
//    Both final answers are equal; only vLLM's deltas announce a call the client never gets and cannot run.
// 6. Tool-call ids are `call_` + 24 hex digits (see `ToolCallIDGenerator`), not `chatcmpl-tool-...`: ids are
//    opaque to clients and only need to be unique; the seedable generator makes tests reproducible.
// 7. A malformed pair (text between `</arg_key>` and `<arg_value>`) is skipped; vLLM's backtracking regex
//    glues it into the next pair's key, producing a key the schema does not know. Reading pairs as they stream
//    cannot backtrack, and a skipped pair is easier for a client to notice than a garbled key.

/// One tool call in the final message.
public struct ParsedToolCall: Equatable, Sendable {
    public var id: String
    public var name: String
    /// The arguments as JSON text (an object), spelled as vLLM spells it: `{"city": "Paris", "days": 3}`.
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// The assistant message parsed from a model output.
public struct ParsedOutput: Equatable, Sendable {
    public var reasoning: String?
    public var content: String?
    public var toolCalls: [ParsedToolCall]

    public init(reasoning: String?, content: String?, toolCalls: [ParsedToolCall]) {
        self.reasoning = reasoning
        self.content = content
        self.toolCalls = toolCalls
    }

    /// `{"role": "assistant", "content": ..., "reasoning_content": ..., "tool_calls": [{"id", "type": "function",
    /// "function": {"name", "arguments"}}]}`: OpenAI's message shape, with the reasoning field chat templates read.
    public var openAIMessage: JSONValue {
        let calls: [JSONValue] = toolCalls.map { call in
            .object(JSONObject([
                ("id", .string(call.id)),
                ("type", .string("function")),
                ("function", .object(JSONObject([("name", .string(call.name)), ("arguments", .string(call.arguments))]))),
            ]))
        }
        return .object(JSONObject([
            ("role", .string("assistant")),
            ("content", content.map { .string($0) } ?? .null),
            ("reasoning_content", reasoning.map { .string($0) } ?? .null),
            ("tool_calls", .array(calls)),
        ]))
    }
}

/// One piece of a streamed message. Concatenating the reasoning pieces gives the final reasoning, the content
/// pieces the final content before stripping, and a call's argument pieces its final arguments JSON.
public enum ParserEvent: Equatable, Sendable {
    case reasoning(String)
    case content(String)
    /// A call's name is known and the call will be returned; `index` counts returned calls from 0.
    case toolCallStart(index: Int, id: String, name: String)
    case toolCallArguments(index: Int, delta: String)

    /// The event as an OpenAI chat-completion chunk's `delta`.
    public var json: JSONValue {
        switch self {
        case .reasoning(let text):
            return .object(JSONObject([("reasoning_content", .string(text))]))
        case .content(let text):
            return .object(JSONObject([("content", .string(text))]))
        case .toolCallStart(let index, let id, let name):
            return ParserEvent.toolCallDelta([
                ("index", JSONValue(index)), ("id", .string(id)), ("type", .string("function")),
                ("function", .object(JSONObject([("name", .string(name))]))),
            ])
        case .toolCallArguments(let index, let delta):
            return ParserEvent.toolCallDelta([
                ("index", JSONValue(index)),
                ("function", .object(JSONObject([("arguments", .string(delta))]))),
            ])
        }
    }

    private static func toolCallDelta(_ fields: [(String, JSONValue)]) -> JSONValue {
        .object(JSONObject([("tool_calls", .array([.object(JSONObject(fields))]))]))
    }
}

/// Parses a whole model output (the text generated after the prompt).
/// Throws only for malformed `options.tools`.
public func parseOutput(_ text: String, options: OutputParserOptions) throws(GLMError) -> ParsedOutput {
    var machine = try OutputStateMachine(options: options, recordsEvents: false)
    _ = machine.feed(text)
    return machine.finish().output
}

/// Parses a model output as it is generated, from chunks cut anywhere (a chunk is a `String`, so it holds
/// whole Unicode scalars). Use one parser per response; it is not thread-safe.
public final class StreamingOutputParser {
    private var machine: OutputStateMachine

    /// Throws only for malformed `options.tools`.
    public init(options: OutputParserOptions) throws(GLMError) {
        machine = try OutputStateMachine(options: options, recordsEvents: true)
    }

    /// The events this chunk completes. Text that could still be the start of a tag waits for the next chunk.
    /// After `finish()` chunks are ignored.
    public func feed(_ chunk: String) -> [ParserEvent] {
        machine.feed(chunk)
    }

    /// Ends the output: the events for text held back so far, and the final message, equal to
    /// `parseOutput` of everything fed. Calling it again returns no events and the same message.
    public func finish() -> (events: [ParserEvent], output: ParsedOutput) {
        machine.finish()
    }
}
