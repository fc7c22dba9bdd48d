import CGLMHeader
import GLMGrammar
import GLMJSON
import GLMSupport
import GLMTokenizer
import Glibc

// glm_grammar (a compiled constraint, immutable) and glm_grammar_matcher (one output's state, exclusive).

/// Reads glm_grammar_compile's options_json.
private func grammarOptions(_ json: JSONValue?, tokenizer: Tokenizer, kind: glm_grammar_kind)
    throws(GLMError) -> (ConstraintOptions, ToolCallChoice) {
    var options = ConstraintOptions()
    if let id = tokenizer.eosTokenID { options.endTokenIDs = [id] }
    var choice = ToolCallChoice.required(parallel: true)
    guard let json else { return (options, choice) }
    guard case .object(let o) = json else { throw .invalidArgument("options_json must be a JSON object") }
    func bool(_ key: String) throws(GLMError) -> Bool? {
        switch o[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case let other?: throw .invalidArgument("options_json: \"\(key)\" is \(other.compactJSON), expected true or false")
        }
    }
    switch o["end_token_ids"] {
    case nil, .null?: break
    case .array(let ids)?:
        options.endTokenIDs = []
        for id in ids {
            guard let n = id.intValue, case .integer = id, n >= 0, n < tokenizer.vocabSize else {
                throw .invalidArgument("options_json: \"end_token_ids\" holds \(id.compactJSON), expected ids in"
                    + " 0..<\(tokenizer.vocabSize)")
            }
            options.endTokenIDs.append(Int32(n))
        }
    case let other?:
        throw .invalidArgument("options_json: \"end_token_ids\" is \(other.compactJSON), expected a list of ids")
    }
    if let strict = try bool("strict") { options.strict = strict }
    if let reasoning = try bool("reasoning") { options.reasoning = reasoning }
    switch o["max_whitespace"] {
    case nil, .null?: break
    case .integer(let text)?:
        guard let n = Int(text), n >= 0, n <= 1000 else {
            throw .invalidArgument("options_json: \"max_whitespace\" is \(text), expected 0..1000")
        }
        options.maxWhitespace = n
    case let other?:
        throw .invalidArgument("options_json: \"max_whitespace\" is \(other.compactJSON), expected an integer")
    }
    let parallel = try bool("parallel_tool_calls") ?? true
    choice = .required(parallel: parallel)
    switch o["tool_choice"] {
    case nil, .null?, .string("required")?: break
    case .object(let c)?:
        guard case .object(let f)? = c["function"], case .string(let name)? = f["name"] else {
            throw .invalidArgument("options_json: \"tool_choice\" needs \"function\": {\"name\": ...}")
        }
        choice = .named(name)
    case let other?:
        throw .invalidArgument("options_json: \"tool_choice\" is \(other.compactJSON), expected \"required\" or"
            + " {\"type\": \"function\", \"function\": {\"name\": ...}}")
    }
    if kind != GLM_GRAMMAR_TOOL_CALLS && (o["tool_choice"] ?? .null) != .null {
        throw .invalidArgument("options_json: \"tool_choice\" applies to GLM_GRAMMAR_TOOL_CALLS only")
    }
    return (options, choice)
}

@c @implementation
public func glm_grammar_compile(_ tokenizer: OpaquePointer?, _ kind: glm_grammar_kind, _ source: UnsafePointer<CChar>?,
                                _ options_json: UnsafePointer<CChar>?,
                                _ out_grammar: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let t: Tokenizer = try Handle.get(tokenizer, "tokenizer")
        let out = try required(out_grammar, "out_grammar")
        let (options, choice) = try grammarOptions(try optionalJSON(options_json, "options_json"), tokenizer: t, kind: kind)
        let constraint: Constraint
        switch kind {
        case GLM_GRAMMAR_JSON_SCHEMA:
            constraint = .jsonSchema(try requiredJSON(source, "source"))
        case GLM_GRAMMAR_JSON_OBJECT:
            guard source == nil else { throw .invalidArgument("source must be NULL for GLM_GRAMMAR_JSON_OBJECT") }
            constraint = .jsonObject
        case GLM_GRAMMAR_REGEX:
            constraint = .regex(try string(source, "source"))
        case GLM_GRAMMAR_TOOL_CALLS:
            guard case .array(let tools) = try requiredJSON(source, "source") else {
                throw .invalidArgument("source must be a JSON array of tools for GLM_GRAMMAR_TOOL_CALLS")
            }
            constraint = .toolCalls(tools: tools, choice: choice)
        default:
            throw .invalidArgument("kind \(kind.rawValue) is not a glm_grammar_kind")
        }
        let grammar = try ConstraintCompiler.compile(constraint, vocabulary: try TokenVocabulary.of(t), options: options)
        out.pointee = Handle.retain(grammar)
    }
}

@c @implementation
public func glm_grammar_free(_ grammar: OpaquePointer?) {
    Handle.release(grammar, as: CompiledGrammar.self)
}

@c @implementation
public func glm_grammar_info(_ grammar: OpaquePointer?,
                             _ out_info_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let g: CompiledGrammar = try Handle.get(grammar, "grammar")
        let out = try required(out_info_json, "out_info_json")
        let info = JSONObject([
            ("kind", .string(g.kind)),
            ("vocab_size", JSONValue(g.vocabulary.size)),
            ("mask_words", JSONValue((g.vocabulary.size + 31) / 32)),
            ("end_token_ids", .array(g.endTokenIDs.map { JSONValue(Int($0)) })),
            ("lexemes", JSONValue(g.lexemeCount)),
            ("rules", JSONValue(g.ruleCount)),
            ("ignored", .array(g.notes.map { .string($0) })),
        ])
        try writeResult(JSONValue.object(info).compactJSON, to: out)
    }
}

@c @implementation
public func glm_grammar_matcher_new(_ grammar: OpaquePointer?,
                                    _ out_matcher: UnsafeMutablePointer<OpaquePointer?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let g: CompiledGrammar = try Handle.get(grammar, "grammar")
        let out = try required(out_matcher, "out_matcher")
        out.pointee = Handle.retain(Exclusive(try GrammarMatcher(g)))
    }
}

@c @implementation
public func glm_grammar_matcher_free(_ matcher: OpaquePointer?) {
    Handle.releaseExclusive(matcher, as: GrammarMatcher.self)
}

@c @implementation
public func glm_grammar_matcher_fill_mask(_ matcher: OpaquePointer?, _ bitmask: UnsafeMutablePointer<UInt32>?,
                                          _ words: Int) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            let out = try required(bitmask, "bitmask")
            let needed = (m.value.vocabularySize + 31) / 32
            guard words >= needed else {
                throw .invalidArgument("words is \(words) but the vocabulary needs \(needed) 32-bit words")
            }
            try m.value.fillMask(out, words: words)
        }
    }
}

@c @implementation
public func glm_grammar_matcher_accept(_ matcher: OpaquePointer?, _ token: Int32) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            try m.value.accept(token)
        }
    }
}

@c @implementation
public func glm_grammar_matcher_accept_text(_ matcher: OpaquePointer?, _ text: UnsafePointer<CChar>?,
                                            _ length: Int) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            let bytes: [UInt8] = length > 0
                ? Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(try required(text, "text")), count: length))
                : []
            guard try m.value.accept(bytes: bytes) else {
                throw .invalidArgument("the text is not allowed by the \(m.value.grammar.kind) constraint here")
            }
        }
    }
}

@c @implementation
public func glm_grammar_matcher_status(_ matcher: OpaquePointer?, _ out_can_end: UnsafeMutablePointer<Bool>?,
                                       _ out_ended: UnsafeMutablePointer<Bool>?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            let canEnd = try m.value.canEnd()
            out_can_end?.pointee = canEnd
            out_ended?.pointee = m.value.isTerminated
        }
    }
}

@c @implementation
public func glm_grammar_matcher_rollback(_ matcher: OpaquePointer?, _ steps: Int) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            try m.value.rollback(steps)
        }
    }
}

@c @implementation
public func glm_grammar_matcher_reset(_ matcher: OpaquePointer?) -> glm_status {
    withStatus { () throws(GLMError) in
        try Handle.use(matcher, "matcher") { (m: Exclusive<GrammarMatcher>) throws(GLMError) in
            m.value.reset()
        }
    }
}
