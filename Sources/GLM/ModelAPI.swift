import CGLMHeader
import GLMSupport
import GLMJSON
import GLMModel
import GLMNumerics
import Glibc

// The glm_model and glm_session handles.

@c @implementation
public func glm_model_default_params() -> glm_model_params {
    glm_model_params(threads: 0, gemm: GLM_GEMM_AUTO, kernels: GLM_KERNELS_AUTO, bf16_inputs: GLM_BF16_INPUTS_AUTO,
                     populate: 0)
}

@c @implementation
public func glm_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<glm_model_params>?,
                           _ out_model: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_model, "out_model")
        let p = params?.pointee ?? glm_model_default_params()
        guard p.threads >= 0 && p.threads <= 1024 else {
            throw .invalidArgument("params.threads must be 0...1024, got \(p.threads)")
        }
        let gemm: GEMMBackend?
        switch p.gemm {
        case GLM_GEMM_AUTO: gemm = nil
        case GLM_GEMM_PACKED: gemm = .packed
        case GLM_GEMM_OPENBLAS: gemm = .openBLAS
        default:
            throw .invalidArgument("params.gemm must be GLM_GEMM_AUTO, GLM_GEMM_PACKED or GLM_GEMM_OPENBLAS, got \(p.gemm.rawValue)")
        }
        let requested: KernelPath?
        switch p.kernels {
        case GLM_KERNELS_AUTO: requested = nil
        case GLM_KERNELS_AVX2: requested = .avx2
        case GLM_KERNELS_AVX512: requested = .avx512
        default:
            throw .invalidArgument("params.kernels must be GLM_KERNELS_AUTO, GLM_KERNELS_AVX2 or GLM_KERNELS_AVX512, got \(p.kernels.rawValue)")
        }
        let bf16Inputs: BF16Inputs?
        switch p.bf16_inputs {
        case GLM_BF16_INPUTS_AUTO: bf16Inputs = nil
        case GLM_BF16_INPUTS_F32: bf16Inputs = .f32
        case GLM_BF16_INPUTS_BF16: bf16Inputs = .bf16
        default:
            throw .invalidArgument("params.bf16_inputs must be GLM_BF16_INPUTS_AUTO, GLM_BF16_INPUTS_F32 or GLM_BF16_INPUTS_BF16, got \(p.bf16_inputs.rawValue)")
        }
        guard p.populate == 0 || p.populate == 1 else {
            throw .invalidArgument("params.populate must be 0 or 1, got \(p.populate)")
        }
        let directory = try string(path, "path")
        // Resolved here, in code built for baseline x86-64: GLMModel is built for x86-64-v3, so on a CPU without
        // AVX2 not even its first instruction may run.
        let kernels = try KernelPath.resolve(requested)
        out.pointee = Handle.retain(try Model.load(directory: directory, threads: Int(p.threads), gemm: gemm,
                                                   kernels: kernels, bf16Inputs: bf16Inputs,
                                                   populate: p.populate == 1))
    }
}

@c @implementation
public func glm_model_free(_ model: OpaquePointer?) {
    Handle.release(model, as: Model.self)
}

@c @implementation
public func glm_model_info(_ model: OpaquePointer?, _ out_info_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
    -> glm_status {
    withStatus { () throws(GLMError) in
        let m: Model = try Handle.get(model, "model")
        try writeResult(m.info.compactJSON, to: try required(out_info_json, "out_info_json"))
    }
}

@c @implementation
public func glm_model_vocab_size(_ model: OpaquePointer?, _ out_vocab_size: UnsafeMutablePointer<Int32>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let m: Model = try Handle.get(model, "model")
        try required(out_vocab_size, "out_vocab_size").pointee = Int32(clamping: m.config.vocabSize)
    }
}

@c @implementation
public func glm_session_default_params() -> glm_session_params {
    glm_session_params(context_length: 0, threads: 0, batch_size: 0, mtp: true, type_k: GLM_KV_F16, type_v: GLM_KV_F16,
                       memory_limit: 0)
}

/// A glm_kv_type field as a KVType (`field` names it in the error).
func kvType(_ value: glm_kv_type, _ field: String) throws(GLMError) -> KVType {
    guard let type = KVType(rawValue: Int32(bitPattern: value.rawValue)) else {
        throw .invalidArgument("\(field) must be GLM_KV_F16, GLM_KV_BF16, GLM_KV_F32 or GLM_KV_Q8_0, got \(value.rawValue)")
    }
    return type
}

/// A caller's memory_limit as an Int (values past Int.max mean no cap worth checking).
func memoryCap(_ value: UInt64) -> Int { value > UInt64(Int.max) ? 0 : Int(value) }

/// The session a glm_session_params describes: (context, threads, batch, mtp, K type, V type).
private func sessionArguments(_ m: Model, _ params: UnsafePointer<glm_session_params>?) throws(GLMError)
    -> (context: Int, threads: Int, batch: Int, mtp: Bool, k: KVType, v: KVType, cap: Int) {
    let p = params?.pointee ?? glm_session_default_params()
    guard p.context_length >= 0, p.threads >= 0, p.threads <= 1024, p.batch_size >= 0 else {
        throw .invalidArgument("session params must not be negative (context_length \(p.context_length),"
            + " threads \(p.threads), batch_size \(p.batch_size)); threads at most 1024")
    }
    let context = p.context_length > 0 ? Int(p.context_length) : min(4096, m.config.maxPositionEmbeddings)
    return (context, Int(p.threads), Int(p.batch_size), p.mtp, try kvType(p.type_k, "params.type_k"),
            try kvType(p.type_v, "params.type_v"), memoryCap(p.memory_limit))
}

@c @implementation
public func glm_session_memory(_ model: OpaquePointer?, _ params: UnsafePointer<glm_session_params>?,
                               _ out_bytes: UnsafeMutablePointer<UInt64>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let m: Model = try Handle.get(model, "model")
        let out = try required(out_bytes, "out_bytes")
        let a = try sessionArguments(m, params)
        out.pointee = UInt64(try Session.memoryRequired(model: m, contextLength: a.context, threads: a.threads,
                                                        batchSize: a.batch, mtp: a.mtp, keyType: a.k,
                                                        valueType: a.v))
    }
}

@c @implementation
public func glm_session_info(_ session: OpaquePointer?, _ out_info_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
    -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_info_json, "out_info_json")
        try Handle.use(session, "session") { (exclusive: Exclusive<Session>) throws(GLMError) in
            let s = exclusive.value
            let perToken = Session.kvBytesPerToken(config: s.model.config, hasMTP: s.drafts, keyType: s.keyType,
                                                   valueType: s.valueType)
            var o = JSONObject()
            o["context_length"] = JSONValue(s.contextLength)
            o["threads"] = JSONValue(s.threads)
            o["batch_size"] = JSONValue(s.batchSize)
            o["mtp"] = .bool(s.drafts)
            o["type_k"] = .string(s.keyType.name)
            o["type_v"] = .string(s.valueType.name)
            o["kv_bytes_per_token"] = JSONValue(perToken.layers)
            o["mtp_kv_bytes_per_token"] = JSONValue(perToken.mtp)
            o["bytes"] = JSONValue(s.allocatedBytes)
            try writeResult(JSONValue.object(o).compactJSON, to: out)
        }
    }
}

@c @implementation
public func glm_session_new(_ model: OpaquePointer?, _ params: UnsafePointer<glm_session_params>?,
                            _ out_session: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let m: Model = try Handle.get(model, "model")
        let out = try required(out_session, "out_session")
        let a = try sessionArguments(m, params)
        let session = try Session(model: m, contextLength: a.context, threads: a.threads, batchSize: a.batch,
                                  mtp: a.mtp, keyType: a.k, valueType: a.v, memoryLimit: a.cap)
        out.pointee = Handle.retain(Exclusive(session))
    }
}

@c @implementation
public func glm_session_free(_ session: OpaquePointer?) {
    Handle.releaseExclusive(session, as: Session.self)
}

/// Which logit rows fit in the caller's buffer (nil: none wanted).
/// The rows the caller asked for, after checking that its buffer matches the request: nil for GLM_LOGITS_NONE.
private func logitRows(_ logits: glm_logits, count: Int, vocab: Int, buffer: UnsafeMutablePointer<Float>?,
                       capacity: Int) throws(GLMError) -> Session.LogitRows? {
    guard capacity >= 0 else { throw .invalidArgument("out_capacity is too large") }
    switch logits {
    case GLM_LOGITS_NONE:
        guard buffer == nil, capacity == 0 else {
            throw .invalidArgument("logits is GLM_LOGITS_NONE but out_logits/out_capacity give a buffer")
        }
        return nil
    case GLM_LOGITS_LAST, GLM_LOGITS_ALL:
        let all = logits == GLM_LOGITS_ALL
        guard buffer != nil else {
            throw .invalidArgument("logits is \(all ? "GLM_LOGITS_ALL" : "GLM_LOGITS_LAST") but out_logits is NULL")
        }
        let rows = all ? count : 1
        guard capacity / vocab >= rows else {
            throw .invalidArgument("out_capacity \(capacity) holds fewer than the \(rows) row(s) of \(vocab) logits asked for")
        }
        return all ? .all : .last
    default:
        throw .invalidArgument("logits must be GLM_LOGITS_NONE, GLM_LOGITS_LAST or GLM_LOGITS_ALL, got \(logits.rawValue)")
    }
}

private func copyLogits(_ logits: UnsafeBufferPointer<Float>, to out: UnsafeMutablePointer<Float>?) {
    guard let out, let base = logits.baseAddress else { return }
    out.update(from: base, count: logits.count)
}

/// glm_session_eval and glm_session_mtp_logits: check the arguments, run `compute` on the tokens with the rows
/// the caller's buffer holds, copy those logits out.
private func runTokens(_ session: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ count: Int, name: String,
                       _ logits: glm_logits, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int,
                       _ compute: (Session, UnsafeBufferPointer<Int32>, Session.LogitRows) throws(GLMError)
                           -> UnsafeBufferPointer<Float>) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(session, "session") { (exclusive: Exclusive<Session>) throws(GLMError) in
            let s = exclusive.value
            guard count >= 0 else { throw .invalidArgument("count is too large") }
            // `compute` checks `count` against the positions left before it reads any id: the caller's array
            // is known to hold `count` ids only if that count is plausible.
            let input = count == 0 ? UnsafeBufferPointer<Int32>(start: nil, count: 0)
                                   : UnsafeBufferPointer(start: try required(tokens, name), count: count)
            let rows = try logitRows(logits, count: count, vocab: s.model.config.vocabSize, buffer: out,
                                     capacity: capacity)
            let computed = try compute(s, input, rows ?? .none)
            if rows != nil, count > 0 { copyLogits(computed, to: out) }
        }
    }
}

@c @implementation
public func glm_session_eval(_ session: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ count: Int,
                             _ logits: glm_logits, _ out_logits: UnsafeMutablePointer<Float>?,
                             _ out_capacity: Int) -> glm_status {
    runTokens(session, tokens, count, name: "tokens", logits, out_logits, out_capacity) { (s, input, rows) throws(GLMError) in
        try s.evaluate(tokens: input, logits: rows)
    }
}

@c @implementation
public func glm_session_truncate(_ session: OpaquePointer?, _ n_tokens: Int) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(session, "session") { (exclusive: Exclusive<Session>) throws(GLMError) in
            try exclusive.value.truncate(to: n_tokens)
        }
    }
}

@c @implementation
public func glm_session_position(_ session: OpaquePointer?, _ out_position: UnsafeMutablePointer<Int>?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(session, "session") { (exclusive: Exclusive<Session>) throws(GLMError) in
            try required(out_position, "out_position").pointee = exclusive.value.position
        }
    }
}

@c @implementation
public func glm_session_mtp_logits(_ session: OpaquePointer?, _ next_tokens: UnsafePointer<Int32>?, _ count: Int,
                                   _ logits: glm_logits, _ out_logits: UnsafeMutablePointer<Float>?,
                                   _ out_capacity: Int) -> glm_status {
    runTokens(session, next_tokens, count, name: "next_tokens", logits, out_logits, out_capacity) {
        (s, input, rows) throws(GLMError) in
        try s.mtpLogits(nextTokens: input, logits: rows)
    }
}
