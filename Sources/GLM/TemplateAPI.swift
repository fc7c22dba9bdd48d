import CGLMHeader
import GLMSupport
import GLMJSON
import GLMFormats
import GLMTemplate

// The glm_chat_template handle and glm_chat_render.

/// A boxed template: handles must be class instances.
final class ChatTemplateHandle {
    let template: ChatTemplate
    init(_ template: ChatTemplate) { self.template = template }
}

/// The built-in GLM-4.7 template, parsed once.
private let builtInTemplate: Result<ChatTemplate, GLMError> = Result { () throws(GLMError) in try ChatTemplate.glm47() }

func defaultChatTemplate() throws(GLMError) -> ChatTemplate {
    try builtInTemplate.get()
}

/// Reads a chat template from a model directory, tokenizer_config.json, a .jinja file or a .gguf.
func loadChatTemplate(path: String, name: String?) throws(GLMError) -> ChatTemplate {
    if FileSystem.isDirectory(path) {
        guard let t = try ChatTemplate.load(modelDirectory: path, name: name) else {
            throw .io("'\(path)' has no chat template (chat_template.jinja or tokenizer_config.json's chat_template)")
        }
        return t
    }
    if path.hasSuffix(".gguf") {
        let gguf = try GGUFFile(path: path)
        let key = name.map { "tokenizer.chat_template.\($0)" } ?? "tokenizer.chat_template"
        guard let source = try gguf.string(for: key) else { throw .io("'\(path)' has no \(key)") }
        return try ChatTemplate(source: source, specialTokens: try ggufSpecialTokens(gguf))
    }
    if path.hasSuffix("tokenizer_config.json") {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return try loadChatTemplate(path: directory.isEmpty ? "." : directory, name: name)
    }
    return try ChatTemplate(source: try FileSystem.readText(path))
}

/// bos_token/eos_token/... as transformers would pass them, from a GGUF's token ids.
private func ggufSpecialTokens(_ gguf: GGUFFile) throws(GLMError) -> JSONObject {
    var result = JSONObject()
    guard let tokens = try gguf.stringArray(for: "tokenizer.ggml.tokens") else { return result }
    for (variable, key) in [("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "padding")] {
        if let id = try gguf.integer(for: "tokenizer.ggml.\(key)_token_id"), id >= 0, id < tokens.count {
            result[variable] = .string(tokens[id])
        }
    }
    return result
}

@c @implementation
public func glm_chat_template_new(_ source: UnsafePointer<CChar>?, _ special_tokens_json: UnsafePointer<CChar>?,
                                  _ out_template: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_template, "out_template")
        let special = try optionalJSON(special_tokens_json, "special_tokens_json")
        if let special, special.objectValue == nil { throw .invalidArgument("special_tokens_json must be an object") }
        let template: ChatTemplate
        if let text = try optionalString(source, "source") {
            template = try ChatTemplate(source: text, specialTokens: special?.objectValue ?? JSONObject())
        } else if let special = special?.objectValue {
            template = try ChatTemplate(source: ChatTemplate.glm47Source, specialTokens: special)
        } else {
            template = try defaultChatTemplate()
        }
        out.pointee = Handle.retain(ChatTemplateHandle(template))
    }
}

@c @implementation
public func glm_chat_template_load(_ path: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                                   _ out_template: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_template, "out_template")
        let template = try loadChatTemplate(path: try string(path, "path"), name: try optionalString(name, "name"))
        out.pointee = Handle.retain(ChatTemplateHandle(template))
    }
}

@c @implementation
public func glm_chat_template_free(_ chat_template: OpaquePointer?) {
    Handle.release(chat_template, as: ChatTemplateHandle.self)
}

/// The pieces of a render request (glm_chat_render's request_json).
struct RenderRequest {
    var messages: JSONValue
    var tools: JSONValue?
    var documents: JSONValue?
    var addGenerationPrompt: Bool
    var variables: JSONObject
    /// What strftime_now shows (seconds since the epoch); nil: SOURCE_DATE_EPOCH or the real clock.
    var now: Int64?

    init(json: JSONValue) throws(GLMError) {
        guard let object = json.objectValue else { throw .invalidArgument("request_json must be a JSON object") }
        guard let messages = object["messages"] else { throw .invalidArgument("request_json has no \"messages\"") }
        self.messages = messages
        tools = object["tools"].flatMap { $0.isNull ? nil : $0 }
        documents = object["documents"].flatMap { $0.isNull ? nil : $0 }
        switch object["add_generation_prompt"] {
        case nil, .null?: addGenerationPrompt = true
        case .bool(let b)?: addGenerationPrompt = b
        default: throw .invalidArgument("request_json: \"add_generation_prompt\" must be a boolean")
        }
        switch object["chat_template_kwargs"] {
        case nil, .null?: variables = JSONObject()
        case .object(let o)?: variables = o
        default: throw .invalidArgument("request_json: \"chat_template_kwargs\" must be an object")
        }
        now = try TemplateClock.epochSeconds(object["now"], field: "request_json: \"now\"")
    }
}

@c @implementation
public func glm_chat_render(_ chat_template: OpaquePointer?, _ request_json: UnsafePointer<CChar>?,
                            _ out_prompt: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_prompt, "out_prompt")
        let template: ChatTemplate
        if chat_template == nil {
            template = try defaultChatTemplate()
        } else {
            let handle: ChatTemplateHandle = try Handle.get(chat_template, "chat_template")
            template = handle.template
        }
        let request = try RenderRequest(json: try requiredJSON(request_json, "request_json"))
        let prompt = try template.render(messages: request.messages, tools: request.tools, documents: request.documents,
                                         addGenerationPrompt: request.addGenerationPrompt, variables: request.variables,
                                         now: request.now)
        try writeResult(prompt, to: out)
    }
}
