import CGLMHeader
import GLMSupport
import GLMJSON
import GLMFormats
import GLMModel
import GLMNumerics
import GLMTemplate
import GLMTokenizer
import GLMGeneration

// The glm_chat handle: OpenAI chat completions on a model directory's tokenizer, template and defaults.

@c @implementation
public func glm_chat_default_params() -> glm_chat_params {
    glm_chat_params(context_length: 0, threads: 0, num_speculative_tokens: 0, type_k: GLM_KV_F16, type_v: GLM_KV_F16,
                    memory_limit: 0)
}

@c @implementation
public func glm_chat_new(_ model: OpaquePointer?, _ params: UnsafePointer<glm_chat_params>?,
                         _ out_chat: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let m: Model = try Handle.get(model, "model")
        let out = try required(out_chat, "out_chat")
        let p = params?.pointee ?? glm_chat_default_params()
        guard p.context_length >= 0, p.threads >= 0, p.threads <= 1024 else {
            throw .invalidArgument("chat params must not be negative (context_length \(p.context_length),"
                + " threads \(p.threads)); threads at most 1024")
        }
        guard p.num_speculative_tokens >= 0, p.num_speculative_tokens <= GenerationSession.maxSpeculativeTokens else {
            throw .invalidArgument("chat params: num_speculative_tokens is \(p.num_speculative_tokens), expected 0"
                + " (off) to \(GenerationSession.maxSpeculativeTokens)")
        }
        let directory = m.directory
        // A GGUF model carries its tokenizer and (usually) its chat template in the file itself.
        let tokenizer = try Tokenizer.load(path: m.ggufFile ?? directory)
        var template = try defaultChatTemplate()
        if let gguf = m.ggufFile {
            if try GGUFFile(path: gguf).value(for: "tokenizer.chat_template") != nil {
                template = try loadChatTemplate(path: gguf, name: nil)
            }
        } else if let own = try ChatTemplate.load(modelDirectory: directory) {
            template = own
        }
        let generationPath = FileSystem.join(directory, "generation_config.json")
        let generation = FileSystem.exists(generationPath) ? try GenerationConfig(contentsOf: generationPath) : nil
        let context = p.context_length > 0 ? Int(p.context_length) : min(4096, m.config.maxPositionEmbeddings)
        let chat = try ChatSession(model: m, tokenizer: tokenizer, template: template, generationConfig: generation,
                                   contextLength: context, threads: Int(p.threads),
                                   speculativeTokens: Int(p.num_speculative_tokens),
                                   keyType: try kvType(p.type_k, "params.type_k"),
                                   valueType: try kvType(p.type_v, "params.type_v"),
                                   memoryLimit: memoryCap(p.memory_limit))
        out.pointee = Handle.retain(Exclusive(chat))
    }
}

@c @implementation
public func glm_chat_free(_ chat: OpaquePointer?) {
    Handle.releaseExclusive(chat, as: ChatSession.self)
}

private extension ChatEvent.Kind {
    var cKind: glm_event_kind {
        switch self {
        case .role: return GLM_EVENT_ROLE
        case .delta: return GLM_EVENT_DELTA
        case .finish: return GLM_EVENT_FINISH
        case .usage: return GLM_EVENT_USAGE
        }
    }
}

@c @implementation
public func glm_chat_complete(_ chat: OpaquePointer?, _ request_json: UnsafePointer<CChar>?,
                              _ callback: glm_event_callback?, _ user_data: UnsafeMutableRawPointer?,
                              _ out_response_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    var cancelled = false
    var freed = false
    let status = withStatus { () throws(GLMError) in
        try Handle.use(chat, "chat") { (exclusive: Exclusive<ChatSession>) throws(GLMError) in
            let session = exclusive.value
            let out = try required(out_response_json, "out_response_json")
            let request = try requiredJSON(request_json, "request_json")
            let onEvent: ((ChatEvent) -> Bool)? = callback.map { callback in
                { event in
                    // Freed by the callback (or another thread): nobody wants the rest, stop as a cancel does.
                    if exclusive.gate.isReleaseRequested {
                        freed = true
                        return false
                    }
                    let delta = event.chunk["choices"]?.arrayValue?.first?["delta"] ?? .object(JSONObject())
                    let keepGoing = event.chunk.compactJSON.withCString { chunk in
                        delta.compactJSON.withCString { deltaText in
                            var e = glm_event(kind: event.kind.cKind, chunk_json: chunk, delta_json: deltaText)
                            return callback(&e, user_data)
                        }
                    }
                    if !keepGoing { cancelled = true }
                    return keepGoing
                }
            }
            let response = try session.complete(request: request, onEvent: onEvent)
            try writeResult(response.compactJSON, to: out)
        }
    }
    if status == GLM_OK && freed {
        LastError.set("the chat was freed during the request, which cancelled it; the partial response is in"
            + " out_response_json")
        return GLM_ERR_CANCELLED
    }
    if status == GLM_OK && cancelled {
        LastError.set("the event callback cancelled the request; the partial response is in out_response_json")
        return GLM_ERR_CANCELLED
    }
    return status
}

@c @implementation
public func glm_chat_reset(_ chat: OpaquePointer?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(chat, "chat") { (exclusive: Exclusive<ChatSession>) throws(GLMError) in
            try exclusive.value.reset()
        }
    }
}
