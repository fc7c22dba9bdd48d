import CGLMHeader
import GLMSupport
import GLMTokenizer
import Glibc

// The glm_tokenizer handle.

/// `count` bytes as a malloc'd NUL-terminated buffer for the caller.
func mallocBytes(_ bytes: [UInt8]) throws(GLMError) -> UnsafeMutablePointer<CChar> {
    guard let p = malloc(bytes.count + 1)?.assumingMemoryBound(to: CChar.self) else {
        throw GLMError(.outOfMemory, "cannot allocate \(bytes.count + 1) bytes")
    }
    bytes.withUnsafeBytes { raw in
        if let base = raw.baseAddress { memcpy(p, base, raw.count) }
    }
    p[bytes.count] = 0
    return p
}

@c @implementation
public func glm_tokenizer_load(_ path: UnsafePointer<CChar>?,
                               _ out_tokenizer: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_tokenizer, "out_tokenizer")
        out.pointee = Handle.retain(try Tokenizer.load(path: try string(path, "path")))
    }
}

@c @implementation
public func glm_tokenizer_free(_ tokenizer: OpaquePointer?) {
    Handle.release(tokenizer, as: Tokenizer.self)
}

@c @implementation
public func glm_tokenize(_ tokenizer: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ length: Int,
                         _ add_special_tokens: Bool, _ out_ids: UnsafeMutablePointer<UnsafeMutablePointer<Int32>?>?,
                         _ out_count: UnsafeMutablePointer<Int>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let outIDs = try required(out_ids, "out_ids")
        let outCount = try required(out_count, "out_count")
        let bytes = UnsafeRawBufferPointer(start: length > 0 ? UnsafeRawPointer(try required(text, "text")) : nil,
                                           count: length)
        guard let input = String(validating: bytes, as: UTF8.self) else {
            throw .invalidArgument("text is not valid UTF-8")
        }
        let ids = try t.encode(input, addSpecialTokens: add_special_tokens)
        outIDs.pointee = try mallocArray(ids)
        outCount.pointee = ids.count
    }
}

@c @implementation
public func glm_detokenize(_ tokenizer: OpaquePointer?, _ ids: UnsafePointer<Int32>?, _ count: Int,
                           _ skip_special_tokens: Bool, _ out_text: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ out_length: UnsafeMutablePointer<Int>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let out = try required(out_text, "out_text")
        let list = try idArray(ids, count)
        let text = try t.decode(list, skipSpecialTokens: skip_special_tokens)
        let utf8 = Array(text.utf8)
        out.pointee = try mallocBytes(utf8)
        out_length?.pointee = utf8.count
    }
}

@c @implementation
public func glm_token_to_piece(_ tokenizer: OpaquePointer?, _ id: Int32,
                               _ out_piece: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                               _ out_length: UnsafeMutablePointer<Int>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let out = try required(out_piece, "out_piece")
        let outLength = try required(out_length, "out_length")
        let bytes = try t.tokenBytes(id)
        out.pointee = try mallocBytes(bytes)
        outLength.pointee = bytes.count
    }
}

@c @implementation
public func glm_tokenizer_vocab_size(_ tokenizer: OpaquePointer?, _ out_size: UnsafeMutablePointer<Int32>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        try required(out_size, "out_size").pointee = Int32(clamping: t.vocabSize)
    }
}

@c @implementation
public func glm_tokenizer_token_to_id(_ tokenizer: OpaquePointer?, _ token: UnsafePointer<CChar>?,
                                      _ out_id: UnsafeMutablePointer<Int32>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let out = try required(out_id, "out_id")
        out.pointee = t.tokenID(for: try string(token, "token")) ?? -1
    }
}

@c @implementation
public func glm_tokenizer_is_special(_ tokenizer: OpaquePointer?, _ id: Int32,
                                     _ out_is_special: UnsafeMutablePointer<Bool>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let out = try required(out_is_special, "out_is_special")
        guard id >= 0 && Int(id) < t.vocabSize else {
            throw .invalidArgument("token id \(id) is out of range (vocabulary size \(t.vocabSize))")
        }
        out.pointee = t.isSpecial(id)
    }
}

/// A caller's id array (`count` may be 0 with a NULL pointer).
func idArray(_ ids: UnsafePointer<Int32>?, _ count: Int) throws(GLMError) -> [Int32] {
    if count == 0 { return [] }
    guard count > 0 else { throw .invalidArgument("count must not be negative") }
    let p = try required(ids, "ids")
    return Array(UnsafeBufferPointer(start: p, count: count))
}
