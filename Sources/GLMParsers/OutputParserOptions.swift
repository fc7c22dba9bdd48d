import GLMSupport
import GLMJSON

/// What the parser needs to know about the request that produced the output.
public struct OutputParserOptions: Sendable {
    /// The request's OpenAI `tools` array (or null): which calls are kept and how their arguments are typed.
    public var tools: JSONValue?
    /// The prompt ended in `<think>` (GLM-4.7's default generation prompt): the output starts in reasoning.
    /// False when thinking was switched off (the prompt ended in `</think>`): everything is content and
    /// `<think>`/`</think>` are plain text.
    public var thinking: Bool
    /// Keep calls to tools the request did not declare (vLLM drops them; so does the default). Their
    /// argument values stay strings.
    public var keepUndeclaredTools: Bool
    /// False for `tool_choice: "none"`: no calls are returned. As in vLLM 0.33, call markup is still recognised
    /// and left out of the content; the text around it stays content.
    public var parseToolCalls: Bool
    /// Seed for the tool-call ids; nil draws a random one per parser.
    public var toolCallIDSeed: UInt64?
    /// The content is data that a constraint produced (a chat request's `response_format`): once in content
    /// (from the start, or after `</think>` with thinking on), no tag is recognised, so a JSON value that
    /// holds `<tool_call>` or `<think>` in a string comes back as written, never as calls or reasoning.
    public var verbatimContent: Bool = false

    public init(tools: JSONValue? = nil, thinking: Bool = true, keepUndeclaredTools: Bool = false,
                parseToolCalls: Bool = true, toolCallIDSeed: UInt64? = nil) {
        self.tools = tools
        self.thinking = thinking
        self.keepUndeclaredTools = keepUndeclaredTools
        self.parseToolCalls = parseToolCalls
        self.toolCallIDSeed = toolCallIDSeed
    }

    /// Reads `{"tools": [...], "tool_choice": "auto", "thinking": true, "keep_undeclared_tools": false,
    /// "tool_call_id_seed": 42}`; every key is optional. `tool_choice` is OpenAI's: `"none"` turns call parsing
    /// off; `"auto"`, `"required"` or a named-function object keep it on. Unknown keys are errors.
    public init(json: JSONValue) throws(GLMError) {
        self.init()
        guard case .object(let object) = json else { throw .invalidArgument("parser options: expected a JSON object") }
        for (key, value) in object {
            switch key {
            case "tools":
                switch value {
                case .null: tools = nil
                case .array: tools = value
                default: throw .invalidArgument("parser options: tools must be an array or null")
                }
            case "tool_choice":
                switch value {
                case .null, .object: parseToolCalls = true
                case .string(let choice) where ["none", "auto", "required"].contains(choice): parseToolCalls = choice != "none"
                default: throw .invalidArgument("parser options: tool_choice must be \"none\", \"auto\", \"required\" or an object")
                }
            case "thinking":
                guard case .bool(let flag) = value else { throw .invalidArgument("parser options: thinking must be a boolean") }
                thinking = flag
            case "keep_undeclared_tools":
                guard case .bool(let flag) = value else {
                    throw .invalidArgument("parser options: keep_undeclared_tools must be a boolean")
                }
                keepUndeclaredTools = flag
            case "tool_call_id_seed":
                guard case .integer(let text) = value, let seed = UInt64(text) else {
                    throw .invalidArgument("parser options: tool_call_id_seed must be an integer in 0...2^64-1")
                }
                toolCallIDSeed = seed
            default:
                throw .invalidArgument("parser options: unknown key \"\(key)\"")
            }
        }
    }
}
