import CGLM

// A thin Swift face over include/glm.h. Why a wrapper and not CGLM calls everywhere: ownership and errors are the
// same at every call site (free what libglm returned, read glm_last_error on the failing thread before the next
// call overwrites it, free handles exactly once), and writing that once keeps the CLI and the server from getting it
// wrong in one of dozens of places. The wrapper adds no behaviour: every method is one glm_* call.

/// A failed libglm call: its status and glm_last_error()'s message.
public struct GLMCallError: Error, CustomStringConvertible, Sendable {
    public let status: glm_status
    public let message: String

    public init(status: glm_status, message: String) {
        self.status = status
        self.message = message
    }

    /// "GLM_ERR_IO", ...
    public var statusName: String { String(cString: glm_status_name(status)) }
    public var description: String { "\(statusName): \(message)" }
}

@inline(__always)
func check(_ status: glm_status) throws(GLMCallError) {
    guard status == GLM_OK else {
        throw GLMCallError(status: status, message: String(cString: glm_last_error()))
    }
}

/// The string libglm returned, copied; the original freed.
func take(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    defer { glm_free(pointer) }
    return String(cString: pointer)
}

public enum LibGLM {
    public static var version: String { String(cString: glm_version()) }
    public static var apiVersion: Int { Int(glm_api_version()) }
    /// The ABI this program was compiled against.
    public static var headerAPIVersion: Int { Int(GLM_API_VERSION) }

    /// glm_system_info(): the CPU, its features and the kernel paths, as JSON text.
    public static func systemInfo() throws(GLMCallError) -> String {
        var out: UnsafeMutablePointer<CChar>?
        try check(glm_system_info(&out))
        return take(out)
    }

    /// glm_parse_output(): a model output as an OpenAI assistant message (JSON text).
    public static func parseOutput(_ text: String, optionsJSON: String?) throws(GLMCallError) -> String {
        var out: UnsafeMutablePointer<CChar>?
        let status = text.withCString { t in
            optionsJSON.withOptionalCString { o in glm_parse_output(t, o, &out) }
        }
        try check(status)
        return take(out)
    }

    public static func setDefaultThreads(_ threads: Int) throws(GLMCallError) {
        try check(glm_set_default_threads(Int32(clamping: threads)))
    }

    public static var defaultThreads: Int { Int(glm_default_threads()) }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case .some(let s): return s.withCString { body($0) }
        case .none: return body(nil)
        }
    }
}

/// A chat template: immutable, usable from many threads at once (glm.h).
public final class ChatTemplate: @unchecked Sendable {
    let handle: OpaquePointer

    /// GLM-4.7's built-in template.
    public init() throws(GLMCallError) {
        var out: OpaquePointer?
        try check(glm_chat_template_new(nil, nil, &out))
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_chat_template_new returned no template") }
        handle = out
    }

    /// A model directory's template (or a .jinja, tokenizer_config.json or .gguf file).
    public init(path: String, name: String? = nil) throws(GLMCallError) {
        var out: OpaquePointer?
        let status = path.withCString { p in name.withOptionalCString { n in glm_chat_template_load(p, n, &out) } }
        try check(status)
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_chat_template_load returned no template") }
        handle = out
    }

    deinit { glm_chat_template_free(handle) }

    /// The template glm_chat_new uses for a model directory: the directory's own, else GLM-4.7's built-in one
    /// (glm_chat_template_load reports a directory without a template as GLM_ERR_IO).
    public static func forChat(modelDirectory: String) throws(GLMCallError) -> ChatTemplate {
        do {
            return try ChatTemplate(path: modelDirectory)
        } catch where error.status == GLM_ERR_IO {
            return try ChatTemplate()
        }
    }

    /// glm_chat_render(): {"messages", "tools", "add_generation_prompt", "chat_template_kwargs", "now"} → prompt.
    public func render(requestJSON: String) throws(GLMCallError) -> String {
        var out: UnsafeMutablePointer<CChar>?
        try check(requestJSON.withCString { glm_chat_render(handle, $0, &out) })
        return take(out)
    }
}

/// A tokenizer: immutable, usable from many threads at once.
public final class Tokenizer: @unchecked Sendable {
    let handle: OpaquePointer

    /// A tokenizer.json, a directory holding one (a model directory), or a .gguf file.
    public init(path: String) throws(GLMCallError) {
        var out: OpaquePointer?
        try check(path.withCString { glm_tokenizer_load($0, &out) })
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_tokenizer_load returned no tokenizer") }
        handle = out
    }

    deinit { glm_tokenizer_free(handle) }

    public func tokenize(_ text: String, addSpecialTokens: Bool) throws(GLMCallError) -> [Int32] {
        var ids: UnsafeMutablePointer<Int32>?
        var count = 0
        // By length: the text may hold NUL characters (withCString's buffer holds all of its UTF-8).
        let length = text.utf8.count
        let status = text.withCString { glm_tokenize(handle, $0, length, addSpecialTokens, &ids, &count) }
        try check(status)
        defer { glm_free(ids) }
        guard let ids else { return [] }
        return Array(UnsafeBufferPointer(start: ids, count: count))
    }

    public func detokenize(_ ids: [Int32], skipSpecialTokens: Bool) throws(GLMCallError) -> String {
        var out: UnsafeMutablePointer<CChar>?
        var length = 0
        let status = ids.withUnsafeBufferPointer { glm_detokenize(handle, $0.baseAddress, $0.count, skipSpecialTokens, &out, &length) }
        try check(status)
        guard let out else { return "" }
        defer { glm_free(out) }
        // The text may hold NUL characters: copy by length, not up to the first NUL.
        return out.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// The raw bytes a token stands for (may be part of a UTF-8 character).
    public func piece(_ id: Int32) throws(GLMCallError) -> [UInt8] {
        var out: UnsafeMutablePointer<CChar>?
        var length = 0
        try check(glm_token_to_piece(handle, id, &out, &length))
        guard let out else { return [] }
        defer { glm_free(out) }
        return out.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    public func vocabSize() throws(GLMCallError) -> Int {
        var size: Int32 = 0
        try check(glm_tokenizer_vocab_size(handle, &size))
        return Int(size)
    }
}

public enum GEMMChoice: String, CaseIterable, Sendable { case auto, packed, openblas }
public enum KernelChoice: String, CaseIterable, Sendable { case auto, avx2, avx512 }
/// glm_bf16_inputs: how bf16 weights multiply (auto: bf16 for GGUF files, f32 for checkpoints).
public enum BF16InputChoice: String, CaseIterable, Sendable { case auto, f32, bf16 }

/// A loaded model: immutable, shared by any number of sessions on any threads.
public final class Model: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String

    /// `populate`: glm_model_params.populate (every page of the files mapped in before the load returns).
    public init(path: String, threads: Int = 0, gemm: GEMMChoice = .auto, kernels: KernelChoice = .auto,
                bf16Inputs: BF16InputChoice = .auto, populate: Bool = false) throws(GLMCallError) {
        var params = glm_model_default_params()
        params.threads = Int32(clamping: threads)
        params.populate = populate ? 1 : 0
        switch gemm {
        case .auto: params.gemm = GLM_GEMM_AUTO
        case .packed: params.gemm = GLM_GEMM_PACKED
        case .openblas: params.gemm = GLM_GEMM_OPENBLAS
        }
        switch kernels {
        case .auto: params.kernels = GLM_KERNELS_AUTO
        case .avx2: params.kernels = GLM_KERNELS_AVX2
        case .avx512: params.kernels = GLM_KERNELS_AVX512
        }
        switch bf16Inputs {
        case .auto: params.bf16_inputs = GLM_BF16_INPUTS_AUTO
        case .f32: params.bf16_inputs = GLM_BF16_INPUTS_F32
        case .bf16: params.bf16_inputs = GLM_BF16_INPUTS_BF16
        }
        var out: OpaquePointer?
        try check(path.withCString { glm_model_load($0, &params, &out) })
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_model_load returned no model") }
        handle = out
        self.path = path
    }

    deinit { glm_model_free(handle) }

    /// glm_model_info() as JSON text.
    public func info() throws(GLMCallError) -> String {
        var out: UnsafeMutablePointer<CChar>?
        try check(glm_model_info(handle, &out))
        return take(out)
    }

    public func vocabSize() throws(GLMCallError) -> Int {
        var size: Int32 = 0
        try check(glm_model_vocab_size(handle, &size))
        return Int(size)
    }
}

/// One sequence's KV cache on a model (glm_session): one call at a time.
public final class Session {
    let handle: OpaquePointer
    public let model: Model

    public init(model: Model, contextLength: Int = 0, threads: Int = 0, batchSize: Int = 0) throws(GLMCallError) {
        var params = glm_session_default_params()
        params.context_length = Int32(clamping: contextLength)
        params.threads = Int32(clamping: threads)
        params.batch_size = Int32(clamping: batchSize)
        params.mtp = false
        var out: OpaquePointer?
        try check(glm_session_new(model.handle, &params, &out))
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_session_new returned no session") }
        handle = out
        self.model = model
    }

    deinit { glm_session_free(handle) }

    /// Evaluates `tokens`; with `lastLogits` writes the last token's logits into it (capacity >= vocabulary).
    public func eval(_ tokens: [Int32], lastLogits: inout [Float]) throws(GLMCallError) {
        let status = tokens.withUnsafeBufferPointer { t in
            lastLogits.withUnsafeMutableBufferPointer { l in
                glm_session_eval(handle, t.baseAddress, t.count, GLM_LOGITS_LAST, l.baseAddress, l.count)
            }
        }
        try check(status)
    }

    public func truncate(_ n: Int) throws(GLMCallError) { try check(glm_session_truncate(handle, n)) }

    public func position() throws(GLMCallError) -> Int {
        var p = 0
        try check(glm_session_position(handle, &p))
        return p
    }
}

/// One streamed piece of a chat completion (glm_event); the strings are copies.
public struct ChatEvent: Sendable {
    public enum Kind: Sendable { case role, delta, finish, usage }
    public let kind: Kind
    /// The OpenAI chat.completion.chunk object.
    public let chunkJSON: String
    /// The chunk's choices[0].delta ("{}" for usage).
    public let deltaJSON: String
}

/// What glm_chat_complete returned: the response, and whether the event callback cancelled it (the response is
/// then the partial one, finish_reason "cancelled").
public struct ChatResult: Sendable {
    public let responseJSON: String
    public let cancelled: Bool
}

/// A chat session on a model (glm_chat): keeps its KV cache across requests; one call at a time.
public final class Chat {
    let handle: OpaquePointer
    public let model: Model
    public let contextLength: Int

    /// The KV cache element types glm_kv_type names ("f16", "bf16", "f32", "q8_0", as llama.cpp's --cache-type-k).
    public static let kvTypes: [String: glm_kv_type] = ["f16": GLM_KV_F16, "bf16": GLM_KV_BF16, "f32": GLM_KV_F32,
                                                        "q8_0": GLM_KV_Q8_0]

    /// `speculativeTokens`: MTP drafts per step for requests that do not set "speculative_config" (0 = off).
    /// `cacheTypeK`, `cacheTypeV`: the KV cache's element types (keys of `kvTypes`; default f16).
    public init(model: Model, contextLength: Int = 0, threads: Int = 0, speculativeTokens: Int = 0,
                cacheTypeK: String = "f16", cacheTypeV: String = "f16") throws(GLMCallError) {
        var params = glm_chat_default_params()
        params.context_length = Int32(clamping: contextLength)
        params.threads = Int32(clamping: threads)
        params.num_speculative_tokens = Int32(clamping: speculativeTokens)
        guard let typeK = Chat.kvTypes[cacheTypeK], let typeV = Chat.kvTypes[cacheTypeV] else {
            throw GLMCallError(status: GLM_ERR_INVALID_ARGUMENT,
                               message: "unknown KV cache type '\(cacheTypeK)' or '\(cacheTypeV)' (f16, bf16, f32, q8_0)")
        }
        params.type_k = typeK
        params.type_v = typeV
        var out: OpaquePointer?
        try check(glm_chat_new(model.handle, &params, &out))
        guard let out else { throw GLMCallError(status: GLM_ERR_INTERNAL, message: "glm_chat_new returned no chat") }
        handle = out
        self.model = model
        self.contextLength = contextLength
    }

    deinit { glm_chat_free(handle) }

    /// Runs one request. `onEvent` (on the calling thread) receives the stream; returning false cancels, and the
    /// partial response comes back with `cancelled` set rather than as an error.
    public func complete(requestJSON: String, onEvent: ((ChatEvent) -> Bool)? = nil) throws(GLMCallError) -> ChatResult {
        var out: UnsafeMutablePointer<CChar>?
        let box = EventBox(onEvent)
        let status: glm_status = withExtendedLifetime(box) {
            requestJSON.withCString { request in
                let callback: glm_event_callback? = onEvent == nil ? nil : { event, userData in
                    guard let event, let userData else { return false }
                    let box = Unmanaged<EventBox>.fromOpaque(userData).takeUnretainedValue()
                    let e = event.pointee
                    let kind: ChatEvent.Kind
                    switch e.kind {
                    case GLM_EVENT_ROLE: kind = .role
                    case GLM_EVENT_FINISH: kind = .finish
                    case GLM_EVENT_USAGE: kind = .usage
                    default: kind = .delta
                    }
                    let chunk = e.chunk_json.map { String(cString: $0) } ?? "{}"
                    let delta = e.delta_json.map { String(cString: $0) } ?? "{}"
                    return box.handler?(ChatEvent(kind: kind, chunkJSON: chunk, deltaJSON: delta)) ?? true
                }
                return glm_chat_complete(handle, request, callback, Unmanaged.passUnretained(box).toOpaque(), &out)
            }
        }
        if status == GLM_ERR_CANCELLED, out != nil {
            return ChatResult(responseJSON: take(out), cancelled: true)
        }
        try check(status)
        return ChatResult(responseJSON: take(out), cancelled: false)
    }

    public func reset() throws(GLMCallError) { try check(glm_chat_reset(handle)) }
}

private final class EventBox {
    let handler: ((ChatEvent) -> Bool)?
    init(_ handler: ((ChatEvent) -> Bool)?) { self.handler = handler }
}

/// glm_quantize: a GGUF model to a llama.cpp file type ("Q4_K_M", ...) with llama-quantize's recipes.
public enum Quantizer {
    /// `progress(bytesDone, bytesTotal, tensor)` on the calling thread; returning false cancels (GLM_ERR_CANCELLED).
    public static func quantize(source: String, destination: String, type: String, threads: Int = 0,
                                allowRequantize: Bool = false,
                                progress: ((UInt64, UInt64, String) -> Bool)? = nil) throws(GLMCallError) {
        var params = glm_quantize_default_params()
        params.threads = Int32(clamping: threads)
        params.allow_requantize = allowRequantize
        let box = ProgressBox(progress)
        let status: glm_status = withExtendedLifetime(box) {
            type.withCString { typeName in
                params.type = typeName
                if progress != nil {
                    params.progress = { done, total, tensor, userData in
                        guard let userData else { return false }
                        let box = Unmanaged<ProgressBox>.fromOpaque(userData).takeUnretainedValue()
                        return box.handler?(done, total, tensor.map { String(cString: $0) } ?? "") ?? true
                    }
                    params.user_data = Unmanaged.passUnretained(box).toOpaque()
                }
                return glm_quantize(source, destination, &params)
            }
        }
        try check(status)
    }
}

private final class ProgressBox {
    let handler: ((UInt64, UInt64, String) -> Bool)?
    init(_ handler: ((UInt64, UInt64, String) -> Bool)?) { self.handler = handler }
}
