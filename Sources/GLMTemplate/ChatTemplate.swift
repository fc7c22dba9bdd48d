import GLMJSON
import GLMSupport

/// A model's chat template, rendered as transformers' `apply_chat_template(..., tokenize=False)` renders it.
///
/// Before rendering, messages get transformers' preprocessing: keys whose value is null are dropped (so
/// `content: null` renders as missing, not "None"); a `reasoning_content`, `thinking` or `reasoning` value is
/// copied to both `reasoning_content` and `thinking`; an empty conversation is refused.
///
/// Template variables: `messages`, `tools` (None when not given), `documents` (None when not given),
/// `add_generation_prompt`, the tokenizer's special tokens (`bos_token`, `eos_token`, ...) and every entry of
/// `variables`. A variable is defined only when the caller passes it: leave `enable_thinking` or
/// `clear_thinking` out of `variables` to leave it undefined. A JSON null passed explicitly becomes a
/// defined Python `None`, exactly as `apply_chat_template(..., clear_thinking=None)` does; note that the
/// GLM-4.7 template tests `clear_thinking is defined and not clear_thinking`, so an explicit null KEEPS all
/// reasoning, and `enable_thinking: null` turns thinking OFF.
public struct ChatTemplate: Sendable {
    /// GLM-4.7's official template (zai-org/GLM-4.7 and GLM-4.7-Flash), byte for byte.
    public static let glm47Source: String = glm47TemplateSource

    public let source: String
    /// transformers' `special_tokens_map` (bos/eos/unk/sep/pad/cls/mask tokens) passed to every render.
    public let specialTokens: JSONObject
    private let template: JinjaTemplate

    public init(source: String, specialTokens: JSONObject = JSONObject(), limits: RenderLimits = RenderLimits()) throws(GLMError) {
        self.source = source
        self.specialTokens = specialTokens
        template = try JinjaTemplate(source: source, limits: limits)
    }

    /// The built-in GLM-4.7 template.
    public static func glm47() throws(GLMError) -> ChatTemplate {
        try ChatTemplate(source: glm47Source)
    }

    /// The template a Hugging Face model directory ships, as transformers picks it: `chat_template.jinja`
    /// (or `additional_chat_templates/<name>.jinja` for a named one), else `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of `{name, template}` from which `name` or else "default" is taken).
    /// Special tokens come from `tokenizer_config.json`. Returns nil when the directory has no template.
    public static func load(modelDirectory: String, name: String? = nil) throws(GLMError) -> ChatTemplate? {
        let configPath = FileSystem.join(modelDirectory, "tokenizer_config.json")
        var config = JSONObject()
        if FileSystem.exists(configPath) {
            let text = try FileSystem.readText(configPath)
            let parsed: JSONValue
            do { parsed = try JSONValue.parse(text) } catch { throw .format("\(configPath): \(error.message)") }
            guard let object = parsed.objectValue else { throw .format("\(configPath): expected a JSON object") }
            config = object
        }
        let specialTokens = specialTokensMap(config)

        if let name, name != "default" {
            let path = FileSystem.join(FileSystem.join(modelDirectory, "additional_chat_templates"), name + ".jinja")
            if FileSystem.exists(path) { return try ChatTemplate(source: try FileSystem.readText(path), specialTokens: specialTokens) }
        } else {
            let path = FileSystem.join(modelDirectory, "chat_template.jinja")
            if FileSystem.exists(path) { return try ChatTemplate(source: try FileSystem.readText(path), specialTokens: specialTokens) }
        }
        switch config["chat_template"] {
        case .some(.string(let source)):
            if let name, name != "default" {
                throw .invalidArgument("\(configPath): no chat template named '\(name)' (the model has a single template)")
            }
            return try ChatTemplate(source: source, specialTokens: specialTokens)
        case .some(.array(let entries)):
            var available: [String] = []
            for entry in entries {
                guard let entryName = entry["name"]?.stringValue, let source = entry["template"]?.stringValue else {
                    throw .format("\(configPath): chat_template entries must be {\"name\": ..., \"template\": ...}")
                }
                available.append(entryName)
                if entryName == (name ?? "default") {
                    return try ChatTemplate(source: source, specialTokens: specialTokens)
                }
            }
            throw .invalidArgument("\(configPath): no chat template named '\(name ?? "default")'; available: \(available.joined(separator: ", "))")
        case .none, .some(.null):
            if let name, name != "default" { throw .invalidArgument("\(modelDirectory): no chat template named '\(name)'") }
            return nil
        case .some:
            throw .format("\(configPath): chat_template must be a string or a list of {name, template}")
        }
    }

    /// transformers' `special_tokens_map`: the named special tokens that are set, as strings.
    static func specialTokensMap(_ config: JSONObject) -> JSONObject {
        var tokens = JSONObject()
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            switch config[key] {
            case .some(.string(let s)): tokens[key] = .string(s)
            case .some(.object(let added)):
                if let content = added["content"]?.stringValue { tokens[key] = .string(content) }
            default: break
            }
        }
        return tokens
    }

    /// Renders a conversation. `messages` is an array of message objects in OpenAI chat shape; `tools` an
    /// array of tool schemas (passed to the template as given); `variables` any other template variables;
    /// `now` the instant `strftime_now` shows, in seconds since the epoch (nil: `TemplateClock.resolve`).
    public func render(messages: JSONValue, tools: JSONValue? = nil, documents: JSONValue? = nil,
                       addGenerationPrompt: Bool = false, variables: JSONObject = JSONObject(),
                       now: Int64? = nil) throws(GLMError) -> String {
        guard case .array(let list) = messages else { throw .invalidArgument("messages must be a JSON array of message objects") }
        guard !list.isEmpty else {
            throw .invalidArgument("Cannot apply chat template to an empty conversation. Provide at least one message.")
        }
        var prepared: [Value] = []
        prepared.reserveCapacity(list.count)
        for (i, message) in list.enumerated() {
            guard case .object(let object) = message else {
                throw .invalidArgument("messages[\(i)] must be a JSON object, got \(message.compactJSON)")
            }
            prepared.append(.dict(ChatTemplate.normalize(object)))
        }
        for reserved in ["messages", "tools", "documents", "add_generation_prompt"] where variables.contains(reserved) {
            throw .invalidArgument("template variable '\(reserved)' is set by the renderer; pass it through its own parameter")
        }
        var all: [(String, Value)] = [
            ("messages", .list(prepared)),
            ("tools", tools.map { Value(json: $0) } ?? .none),
            ("documents", documents.map { Value(json: $0) } ?? .none),
            ("add_generation_prompt", .bool(addGenerationPrompt)),
        ]
        for (k, v) in specialTokens where !variables.contains(k) { all.append((k, Value(json: v))) }
        for (k, v) in variables { all.append((k, Value(json: v))) }
        return try template.render(values: all, now: now)
    }

    /// transformers' `_normalize_chat_messages` (drop null-valued keys) then `_alias_reasoning_fields`
    /// (`{"thinking": r, **message, "reasoning_content": r}` where r is the first non-null of
    /// reasoning_content, thinking, reasoning).
    static func normalize(_ message: JSONObject) -> PyDict {
        var kept = PyDict()
        var reasoning: [String: Value] = [:]
        for (k, v) in message where !v.isNull {
            let value = Value(json: v)
            kept.set(string: k, value)
            if k == "reasoning_content" || k == "thinking" || k == "reasoning" { reasoning[k] = value }
        }
        guard let r = reasoning["reasoning_content"] ?? reasoning["thinking"] ?? reasoning["reasoning"] else { return kept }
        var aliased = PyDict()
        aliased.set(string: "thinking", r)
        for (k, v) in kept.pairs { aliased.set(k, v) }
        aliased.set(string: "reasoning_content", r)
        return aliased
    }
}
