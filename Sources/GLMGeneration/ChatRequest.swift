import GLMGrammar
import GLMJSON
import GLMSupport
import GLMTemplate

/// An OpenAI chat-completions request, checked field by field and normalised the way vLLM prepares messages
/// for the chat template. Unknown fields are ignored (as vLLM does); a known field of the wrong type or out of
/// range is an `invalidArgument` error that names it.
public struct ChatRequest: Sendable {
    public enum ToolChoice: Sendable, Equatable {
        case auto, none
        /// At least one call (OpenAI "required").
        case required
        /// Exactly one call of this function (OpenAI `{"type": "function", "function": {"name": ...}}`).
        case function(String)

        /// Whether the reply must be tool calls (the output is constrained).
        public var forcesCall: Bool {
            switch self {
            case .required, .function: return true
            case .auto, .none: return false
            }
        }
    }

    /// OpenAI `response_format`.
    public enum ResponseFormat: Sendable, Equatable {
        case text
        case jsonObject
        /// `json_schema.schema` (`true` when absent) and `json_schema.strict`.
        case jsonSchema(JSONValue, strict: Bool)
    }

    public var model: String?
    /// The messages as the template receives them (see `normalizeMessage`); empty when `prompt` is given.
    public var messages: [JSONValue]
    /// libglm's `prompt`: text used as the prompt as it is, instead of rendering `messages` with the template (the
    /// text completions of an OpenAI server's /v1/completions). Its output is not parsed: all of it is content.
    public var prompt: String?
    /// The `tools` list, or nil when absent, null or empty.
    public var tools: [JSONValue]?
    public var toolChoice: ToolChoice = .auto
    public var responseFormat: ResponseFormat = .text
    /// `parallel_tool_calls` (default true): with tool_choice "required", whether several calls may follow.
    public var parallelToolCalls = true
    /// The caller's sampling fields over the session's defaults.
    public var sampling: SamplingParameters
    public var seed: UInt64?
    /// `max_completion_tokens`, else `max_tokens`; nil = until the context is full.
    public var maxTokens: Int?
    public var stop: [String] = []
    /// `chat_template_kwargs`, passed to the template as variables (only the keys the caller set).
    public var templateVariables: JSONObject = JSONObject()
    /// libglm's `now`: the instant the template's `strftime_now` shows, seconds since the epoch (nil:
    /// SOURCE_DATE_EPOCH or the real clock; see `TemplateClock`).
    public var now: Int64?
    public var stream = false
    /// `stream_options.include_usage`: the last streamed chunk carries `usage`.
    public var streamIncludeUsage = false
    /// libglm's `speculative_config` (vLLM's server option of that name, per request here):
    /// `{"method": "mtp", "num_speculative_tokens": k}`, k = 0 (off) ... 3. nil: the chat session's default.
    public var speculativeTokens: Int?

    public init(json: JSONValue, defaults: SamplingParameters) throws(GLMError) {
        guard case .object(let fields) = json else { throw .invalidArgument("request: expected a JSON object") }
        let f = RequestFields(fields)
        model = try f.string("model")
        prompt = try f.string("prompt")
        let rawMessages = try f.array("messages")
        if prompt != nil {
            // A raw prompt has no template to place messages, tools or template variables in.
            for key in ["messages", "tools", "chat_template_kwargs"] where fields[key] != nil && fields[key] != .null {
                throw .invalidArgument("request: \"\(key)\" cannot be combined with \"prompt\" (a raw prompt is not rendered)")
            }
        } else {
            guard let rawMessages else {
                throw .invalidArgument("request: \"messages\" is required (or a raw \"prompt\")")
            }
            guard !rawMessages.isEmpty else { throw .invalidArgument("request: \"messages\" is empty") }
        }
        var normalized: [JSONValue] = []
        for (i, message) in (rawMessages ?? []).enumerated() {
            normalized.append(try ChatRequest.normalizeMessage(message, at: i))
        }
        messages = normalized
        if let list = try f.array("tools"), !list.isEmpty {
            for (i, tool) in list.enumerated() { try ChatRequest.checkTool(tool, at: i) }
            tools = list
        }
        parallelToolCalls = try f.bool("parallel_tool_calls") ?? true
        toolChoice = try ChatRequest.toolChoice(fields["tool_choice"], tools: tools)

        var s = defaults
        if let t = try f.number("temperature") { s.temperature = t }
        if let p = try f.number("top_p") { s.topP = p }
        if let k = try f.integer("top_k") { s.topK = k }
        if let p = try f.number("min_p") { s.minP = p }
        if let r = try f.number("repetition_penalty") { s.repetitionPenalty = r }
        if let p = try f.number("presence_penalty") { s.presencePenalty = p }
        if let p = try f.number("frequency_penalty") { s.frequencyPenalty = p }
        if let bias = try f.object("logit_bias") {
            s.logitBias = [:]
            for (key, value) in bias {
                guard let id = Int(key) else {
                    throw .invalidArgument("request: \"logit_bias\" key \"\(key)\" is not a token id")
                }
                guard let b = value.doubleValue, value.boolValue == nil else {
                    throw .invalidArgument("request: \"logit_bias\"[\"\(key)\"] is \(value.compactJSON), expected a number")
                }
                // Checked before clamping: the clamp would turn NaN or infinity into an arbitrary bound.
                guard b.isFinite else {
                    throw .invalidArgument("request: \"logit_bias\"[\"\(key)\"] is \(value.compactJSON), expected a finite number")
                }
                s.logitBias[id] = min(100, max(-100, b))
            }
        }
        sampling = s
        if let seedValue = try f.integer("seed") { seed = UInt64(bitPattern: Int64(seedValue)) }

        let completionLimit = try f.integer("max_completion_tokens")
        let legacyLimit = try f.integer("max_tokens")
        if let limit = completionLimit ?? legacyLimit {
            guard limit >= 1 else {
                throw .invalidArgument("request: \"\(completionLimit != nil ? "max_completion_tokens" : "max_tokens")\" is \(limit), expected at least 1")
            }
            maxTokens = limit
        }
        switch fields["stop"] {
        case nil, .null?: stop = []
        case .string(let s)?: stop = [s]
        case .array(let items)?:
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    throw .invalidArgument("request: \"stop\"[\(i)] is \(item.compactJSON), expected a string")
                }
                stop.append(s)
            }
        case let other?:
            throw .invalidArgument("request: \"stop\" is \(other.compactJSON), expected a string or a list of strings")
        }
        if let kwargs = try f.object("chat_template_kwargs") { templateVariables = kwargs }
        now = try TemplateClock.epochSeconds(fields["now"], field: "request: \"now\"")
        stream = try f.bool("stream") ?? false
        if let options = try f.object("stream_options") {
            let o = RequestFields(options, prefix: "stream_options.")
            streamIncludeUsage = try o.bool("include_usage") ?? false
        }
        if let spec = try f.object("speculative_config") {
            let o = RequestFields(spec, prefix: "speculative_config.")
            if let method = try o.string("method"), method != "mtp" {
                throw .invalidArgument("request: \"speculative_config.method\" is \"\(method)\"; libglm drafts with"
                    + " the model's MTP layer only (\"mtp\")")
            }
            let k = try o.integer("num_speculative_tokens") ?? 1
            guard k >= 0 && k <= GenerationSession.maxSpeculativeTokens else {
                throw .invalidArgument("request: \"speculative_config.num_speculative_tokens\" is \(k), expected 0"
                    + " (off) to \(GenerationSession.maxSpeculativeTokens)")
            }
            speculativeTokens = k
        }
        if let n = try f.integer("n"), n != 1 {
            throw .unsupported("request: \"n\" is \(n); only one choice per request is supported")
        }
        try ChatRequest.checkUnsupportedOutputFields(f)
        responseFormat = try ChatRequest.responseFormat(f)
        if responseFormat != .text, toolChoice.forcesCall {
            throw .invalidArgument("request: \"response_format\" other than text cannot be combined with \"tool_choice\""
                + " \"required\" or a named function (the reply would have to be both)")
        }
    }

    /// `tool_choice`: "auto" (default), "none", "required", or {"type": "function", "function": {"name"}} naming
    /// a declared tool. "required" and a named function need tools.
    static func toolChoice(_ value: JSONValue?, tools: [JSONValue]?) throws(GLMError) -> ToolChoice {
        switch value {
        case nil, .null?, .string("auto")?: return .auto
        case .string("none")?: return .none
        case .string("required")?:
            guard let tools, !tools.isEmpty else {
                throw .invalidArgument("request: \"tool_choice\" \"required\" needs a non-empty \"tools\" list")
            }
            return .required
        case .object(let o)?:
            if let type = o["type"], type != .string("function") {
                throw .invalidArgument("request: \"tool_choice\".type is \(type.compactJSON), expected \"function\"")
            }
            guard case .object(let function)? = o["function"], case .string(let name)? = function["name"] else {
                throw .invalidArgument("request: \"tool_choice\" \(o.count == 0 ? "{}" : JSONValue.object(o).compactJSON)"
                    + " needs \"function\": {\"name\": ...}")
            }
            let declared = (tools ?? []).contains { tool in
                tool["function"]?["name"] == .string(name)
            }
            guard declared else {
                throw .invalidArgument("request: \"tool_choice\" names the function \"\(name)\", which \"tools\" does not declare")
            }
            return .function(name)
        case let other?:
            throw .invalidArgument("request: \"tool_choice\" is \(other.compactJSON), expected \"auto\", \"none\","
                + " \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}")
        }
    }

    /// `response_format`: {"type": "text"} (OpenAI's default), {"type": "json_object"}, or {"type": "json_schema",
    /// "json_schema": {"name", "schema", "strict"}}.
    static func responseFormat(_ f: RequestFields) throws(GLMError) -> ResponseFormat {
        guard let format = try f.object("response_format") else { return .text }
        guard case .string(let type)? = format["type"] else {
            let found = format["type"]?.compactJSON ?? "missing"
            throw .invalidArgument("request: \"response_format\".type is \(found), expected a string")
        }
        switch type {
        case "text": return .text
        case "json_object": return .jsonObject
        case "json_schema":
            guard case .object(let spec)? = format["json_schema"] else {
                throw .invalidArgument("request: \"response_format\" of type \"json_schema\" needs a \"json_schema\" object")
            }
            let s = RequestFields(spec, prefix: "response_format.json_schema.")
            _ = try s.string("name")
            let strict = try s.bool("strict") ?? false
            let schema = spec["schema"] ?? .bool(true)
            switch schema {
            case .object, .bool: break
            default:
                throw .invalidArgument("request: \"response_format\".json_schema.schema is \(schema.compactJSON), expected a JSON Schema object")
            }
            return .jsonSchema(schema, strict: strict)
        default:
            throw .unsupported("request: \"response_format\" of type \"\(type)\" is not supported (\"text\","
                + " \"json_object\" or \"json_schema\")")
        }
    }

    /// The output constraint the request asks for, if any (GLMGrammar compiles it against the tokenizer).
    public var constraint: (Constraint, strict: Bool)? {
        switch toolChoice {
        case .required: return (.toolCalls(tools: tools ?? [], choice: .required(parallel: parallelToolCalls)), false)
        case .function(let name): return (.toolCalls(tools: tools ?? [], choice: .named(name)), false)
        case .auto, .none: break
        }
        switch responseFormat {
        case .text: return nil
        case .jsonObject: return (.jsonObject, false)
        case .jsonSchema(let schema, let strict): return (.jsonSchema(schema), strict)
        }
    }

    /// Fields that change what the response holds are refused rather than ignored, so a caller never takes a
    /// plain response for the one it asked for. Their neutral values pass: `logprobs` false, `top_logprobs` 0.
    static func checkUnsupportedOutputFields(_ f: RequestFields) throws(GLMError) {
        if try f.bool("logprobs") == true {
            throw .unsupported("request: \"logprobs\" is not supported")
        }
        if let top = try f.integer("top_logprobs"), top != 0 {
            throw .unsupported("request: \"top_logprobs\" is \(top); log probabilities are not supported")
        }
    }

    // MARK: messages and tools

    /// What vLLM does to an OpenAI message before rendering: a tool call's `arguments` given as a JSON string
    /// is parsed (it must hold an object), missing or empty becomes `{}`; a tool message whose content is a list
    /// of text parts becomes one string joined by newlines (vLLM >= 0.20.2). (`reasoning` -> `reasoning_content`
    /// and dropping null keys are transformers' steps, done by `ChatTemplate.render`.)
    static func normalizeMessage(_ message: JSONValue, at index: Int) throws(GLMError) -> JSONValue {
        let place = "messages[\(index)]"
        guard case .object(var m) = message else { throw .invalidArgument("\(place) is not a JSON object") }
        guard case .string(let role)? = m["role"] else {
            throw .invalidArgument("\(place).role is \(m["role"]?.compactJSON ?? "missing"), expected a string")
        }
        switch m["content"] {
        case nil, .null?, .string?: break
        case .array(let parts)?:
            for (j, part) in parts.enumerated() {
                switch part {
                case .string, .object: break
                default: throw .invalidArgument("\(place).content[\(j)] is \(part.compactJSON), expected a content part object")
                }
            }
            if role == "tool", let text = joinedText(parts) { m["content"] = .string(text) }
        case let other?:
            throw .invalidArgument("\(place).content is \(other.compactJSON), expected a string, a list of parts or null")
        }
        if let calls = m["tool_calls"], calls != .null {
            guard case .array(let list) = calls else {
                throw .invalidArgument("\(place).tool_calls is \(calls.compactJSON), expected a list")
            }
            var fixed: [JSONValue] = []
            for (j, call) in list.enumerated() {
                fixed.append(try normalizeToolCall(call, place: "\(place).tool_calls[\(j)]"))
            }
            m["tool_calls"] = .array(fixed)
        }
        return .object(m)
    }

    private static func normalizeToolCall(_ call: JSONValue, place: String) throws(GLMError) -> JSONValue {
        guard case .object(var c) = call else { throw .invalidArgument("\(place) is not a JSON object") }
        // OpenAI nests name/arguments in `function`; the template also accepts them on the call itself.
        let nested = c["function"] != nil && c["function"] != .null
        let functionPlace = nested ? "\(place).function" : place
        var function: JSONObject
        if nested {
            guard case .object(let f)? = c["function"] else {
                throw .invalidArgument("\(functionPlace) is not a JSON object")
            }
            function = f
        } else {
            function = c
        }
        guard case .string? = function["name"] else {
            throw .invalidArgument("\(functionPlace).name is \(function["name"]?.compactJSON ?? "missing"), expected a string")
        }
        switch function["arguments"] {
        case nil, .null?, .string("")?:
            function["arguments"] = .object(JSONObject())
        case .string(let text)?:
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(text)
            } catch {
                throw .invalidArgument("\(functionPlace).arguments is not valid JSON: \(error.message)")
            }
            guard case .object = parsed else {
                throw .invalidArgument("\(functionPlace).arguments must encode a JSON object, got \(parsed.compactJSON)")
            }
            function["arguments"] = parsed
        case .object?: break
        case let other?:
            throw .invalidArgument("\(functionPlace).arguments is \(other.compactJSON), expected a JSON object or a string holding one")
        }
        if nested { c["function"] = .object(function) } else { c = function }
        return .object(c)
    }

    /// The text of a list made only of text parts (or bare strings), joined by "\n"; nil if anything else is in it.
    private static func joinedText(_ parts: [JSONValue]) -> String? {
        var texts: [String] = []
        for part in parts {
            switch part {
            case .string(let s): texts.append(s)
            case .object(let o):
                guard o["type"] == .string("text"), case .string(let s)? = o["text"] else { return nil }
                texts.append(s)
            default: return nil
            }
        }
        return texts.joined(separator: "\n")
    }

    /// An OpenAI tool: `{"type": "function", "function": {"name": ..., "description"?: ..., "parameters"?: {...}}}`.
    static func checkTool(_ tool: JSONValue, at index: Int) throws(GLMError) {
        let place = "tools[\(index)]"
        guard case .object(let t) = tool else { throw .invalidArgument("\(place) is \(tool.compactJSON), expected a JSON object") }
        if let type = t["type"], type != .string("function") {
            throw .invalidArgument("\(place).type is \(type.compactJSON), expected \"function\"")
        }
        guard case .object(let function)? = t["function"] else {
            throw .invalidArgument("\(place).function is \(t["function"]?.compactJSON ?? "missing"), expected a JSON object")
        }
        guard case .string(let name)? = function["name"], !name.isEmpty else {
            throw .invalidArgument("\(place).function.name is \(function["name"]?.compactJSON ?? "missing"), expected a non-empty string")
        }
        if let description = function["description"], description != .null, description.stringValue == nil {
            throw .invalidArgument("\(place).function.description is \(description.compactJSON), expected a string")
        }
        if let parameters = function["parameters"], parameters != .null, parameters.objectValue == nil {
            throw .invalidArgument("\(place).function.parameters (tool \"\(name)\") is \(parameters.compactJSON), expected a JSON Schema object")
        }
    }
}

/// Typed reads of optional request fields; `null` counts as absent (as in OpenAI's and vLLM's schemas).
struct RequestFields {
    let object: JSONObject
    let prefix: String

    init(_ object: JSONObject, prefix: String = "") {
        self.object = object
        self.prefix = prefix
    }

    private func present(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    private func wrongType(_ key: String, _ value: JSONValue, _ expected: String) -> GLMError {
        .invalidArgument("request: \"\(prefix)\(key)\" is \(value.compactJSON), expected \(expected)")
    }

    func string(_ key: String) throws(GLMError) -> String? {
        guard let v = present(key) else { return nil }
        guard case .string(let s) = v else { throw wrongType(key, v, "a string") }
        return s
    }

    func number(_ key: String) throws(GLMError) -> Double? {
        guard let v = present(key) else { return nil }
        switch v {
        case .integer, .double:
            guard let d = v.doubleValue, d.isFinite else { throw wrongType(key, v, "a finite number") }
            return d
        default: throw wrongType(key, v, "a number")
        }
    }

    func integer(_ key: String) throws(GLMError) -> Int? {
        guard let v = present(key) else { return nil }
        guard case .integer(let text) = v else { throw wrongType(key, v, "an integer") }
        guard let n = Int(text) else { throw wrongType(key, v, "an integer that fits 64 bits") }
        return n
    }

    func bool(_ key: String) throws(GLMError) -> Bool? {
        guard let v = present(key) else { return nil }
        guard case .bool(let b) = v else { throw wrongType(key, v, "true or false") }
        return b
    }

    func array(_ key: String) throws(GLMError) -> [JSONValue]? {
        guard let v = present(key) else { return nil }
        guard case .array(let a) = v else { throw wrongType(key, v, "a list") }
        return a
    }

    func object(_ key: String) throws(GLMError) -> JSONObject? {
        guard let v = present(key) else { return nil }
        guard case .object(let o) = v else { throw wrongType(key, v, "a JSON object") }
        return o
    }
}
