import GLMFormats
import GLMGrammar
import GLMJSON
import GLMModel
import GLMNumerics
import GLMParsers
import GLMSupport
import GLMTemplate
import GLMTokenizer
import Glibc

/// One conversation with a model, OpenAI chat-completions in and out, keeping its KV cache across requests.
///
/// Each request is rendered in full by the chat template (the caller sends the whole conversation, as with any
/// OpenAI server), tokenized, and only the tokens after the longest prefix shared with the cache are evaluated.
/// GLM-4.7's template keeps the reasoning of the current tool loop, so its prefix stays stable there; when a new
/// user turn drops older reasoning, the cache is cut at the first token that differs.
///
/// One thread at a time per session; any number of sessions may share one `Model` on their own threads.
public final class ChatSession {
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    /// The sampling defaults of generation_config.json, under every request's own fields.
    public let defaults: SamplingParameters
    /// generation_config.json's `max_new_tokens`, used when a request sets no limit.
    public let defaultMaxTokens: Int?
    /// The `model` field of responses when the request has none.
    public let modelName: String
    public let engine: GenerationSession
    /// Drafts per step of MTP speculative decoding for requests that do not say (0 = off).
    public let defaultSpeculativeTokens: Int

    /// Tokens the KV cache holds (prompt and reply tokens evaluated so far).
    public var cachedTokens: [Int32] { engine.cachedTokens }
    /// The tokens the last request generated (its eos token included) and the prompt it rendered.
    public private(set) var lastCompletionTokens: [Int32] = []
    public private(set) var lastPromptTokens: [Int32] = []
    /// Compiled output constraints of recent requests (response_format, tool_choice), most recent last. Their
    /// lexer caches are shared by this session's matchers (one request at a time), so a schema used again
    /// starts warm.
    private var constraints: [(key: String, grammar: CompiledGrammar)] = []
    static let constraintCacheSize = 8

    /// eos ids: generation_config.json's, else config.json's, else the tokenizer's eos token.
    public init(model: Model, tokenizer: Tokenizer, template: ChatTemplate, generationConfig: GenerationConfig?,
                contextLength: Int, threads: Int = 0, modelName: String? = nil, speculativeTokens: Int = 0,
                keyType: KVType = .f32, valueType: KVType = .f32, memoryLimit: Int = 0) throws(GLMError) {
        var eos = generationConfig?.eosTokenIDs ?? []
        if eos.isEmpty { eos = model.config.eosTokenIDs }
        if eos.isEmpty, let id = tokenizer.eosTokenID { eos = [Int(id)] }
        guard !eos.isEmpty else {
            throw .invalidArgument("no eos token id: generation_config.json, config.json and the tokenizer name none")
        }
        let vocab = model.config.vocabSize
        for id in eos where id >= vocab {
            throw .invalidArgument("eos token id \(id) is outside the model's vocabulary 0..<\(vocab)")
        }
        guard tokenizer.vocabSize <= vocab else {
            throw .invalidArgument("the tokenizer (\(tokenizer.source)) has \(tokenizer.vocabSize) ids but the model"
                + " '\(model.directory)' has \(vocab) vocabulary rows")
        }
        self.tokenizer = tokenizer
        self.template = template
        self.defaults = SamplingParameters(defaults: generationConfig)
        self.defaultMaxTokens = generationConfig?.maxNewTokens
        self.modelName = modelName ?? ChatSession.lastPathComponent(model.directory)
        guard speculativeTokens >= 0 && speculativeTokens <= GenerationSession.maxSpeculativeTokens else {
            throw .invalidArgument("num_speculative_tokens is \(speculativeTokens), expected 0 (off) to"
                + " \(GenerationSession.maxSpeculativeTokens)")
        }
        if speculativeTokens > 0 && !model.hasMTP {
            throw .invalidArgument("num_speculative_tokens is \(speculativeTokens) but model '\(model.directory)' has"
                + " no MTP layer to draft with")
        }
        self.defaultSpeculativeTokens = speculativeTokens
        self.engine = try GenerationSession(model: model, contextLength: contextLength, threads: threads,
                                            eosTokenIDs: eos.map { Int32($0) },
                                            sampleableVocabulary: tokenizer.vocabSize,
                                            drafting: speculativeTokens > 0, keyType: keyType,
                                            valueType: valueType, memoryLimit: memoryLimit)
    }

    /// Forgets the KV cache (the next request evaluates its whole prompt).
    public func reset() throws(GLMError) { try engine.reset() }

    /// Runs one OpenAI chat-completions request (a JSON object) and returns the `chat.completion` response.
    /// `onEvent` receives the stream in order; returning false cancels: the call then returns what was
    /// generated so far with finish reason "cancelled". Errors (bad request, template failure, prompt longer
    /// than the context) leave the session as it was.
    public func complete(request json: JSONValue, onEvent: ((ChatEvent) -> Bool)? = nil) throws(GLMError) -> JSONValue {
        try complete(ChatRequest(json: json, defaults: defaults), onEvent: onEvent)
    }

    /// The same for a request given as JSON text (what crosses the C API); malformed JSON is an
    /// `invalidArgument` error naming the line and column.
    public func complete(requestText: String, onEvent: ((ChatEvent) -> Bool)? = nil) throws(GLMError) -> JSONValue {
        let json: JSONValue
        do {
            json = try JSONValue.parse(requestText, maxDepth: 128)
        } catch {
            throw .invalidArgument("request is not valid JSON: \(error.message)")
        }
        return try complete(request: json, onEvent: onEvent)
    }

    public func complete(_ request: ChatRequest, onEvent: ((ChatEvent) -> Bool)? = nil) throws(GLMError) -> JSONValue {
        try request.sampling.validate(vocabularySize: tokenizer.vocabSize)
        let tools = request.tools.map { JSONValue.array($0) }
        let promptText: String
        let prompt: [Int32]
        if let raw = request.prompt {
            // As vLLM's text completions: the tokenizer's special tokens added (GLM's adds none), text as given.
            promptText = raw
            prompt = try tokenizer.encode(raw, addSpecialTokens: true)
            guard !prompt.isEmpty else { throw .invalidArgument("request: \"prompt\" is empty") }
        } else {
            promptText = try template.render(messages: .array(request.messages), tools: tools,
                                             addGenerationPrompt: true, variables: request.templateVariables,
                                             now: request.now)
            prompt = try tokenizer.encode(promptText, addSpecialTokens: false)
            guard !prompt.isEmpty else { throw .template("the chat template rendered an empty prompt") }
        }
        guard prompt.count < engine.contextLength else {
            throw GLMError(.contextFull, "the prompt has \(prompt.count) tokens but the session's context holds"
                + " \(engine.contextLength) (at least one position must be left for the reply)")
        }

        let speculativeTokens = request.speculativeTokens ?? defaultSpeculativeTokens
        if speculativeTokens > 0 && engine.draftOverride == nil { try engine.enableDrafting() }
        let seed = request.seed ?? SeededRandom.freshSeed()
        var sampler = Sampler(parameters: request.sampling, seed: seed)
        // The template's generation prompt says whether the output starts inside the reasoning.
        var parserOptions = OutputParserOptions(tools: tools, thinking: promptText.hasSuffix("<think>"),
                                                parseToolCalls: request.toolChoice != .none,
                                                toolCallIDSeed: seed ^ 0x746F_6F6C_5F69_6473)
        // Structured output (issue 13): the JSON a response_format constrained is the content as written.
        parserOptions.verbatimContent = request.responseFormat != .text
        let constraint = try matcher(for: request, thinking: parserOptions.thinking)
        let identity = ChatSession.identity(model: request.model ?? modelName)
        let parser = request.prompt == nil ? try StreamingOutputParser(options: parserOptions) : nil
        var text = TextPipeline(tokenizer: tokenizer, parser: parser, stopStrings: request.stop)

        var listening = onEvent != nil
        func send(_ kind: ChatEvent.Kind) -> Bool {
            guard listening, let onEvent else { return true }
            if !onEvent(ChatEvent(kind, identity: identity)) { listening = false; return false }
            return true
        }

        lastPromptTokens = prompt
        var cancelledBeforeStart = false
        if !send(.role) { cancelledBeforeStart = true }
        let result: GenerationResult
        if cancelledBeforeStart {
            result = GenerationResult(tokens: [], finishReason: .cancelled, promptTokens: prompt.count,
                                      reusedPromptTokens: engine.commonPrefixLength(with: prompt), eosToken: nil)
        } else {
            result = try engine.generate(prompt: prompt, sampler: &sampler,
                                         maxTokens: request.maxTokens ?? defaultMaxTokens,
                                         constraint: constraint,
                                         speculativeTokens: speculativeTokens) { (token) throws(GLMError) in
                for event in try text.append(token) where !send(.delta(event)) { return .cancel }
                return text.stopMatched ? .stop : .proceed
            }
        }
        lastCompletionTokens = result.tokens

        let cancelled = result.finishReason == .cancelled
        let (finalEvents, parsed) = text.finish(emitHeldText: !cancelled)
        if !cancelled {
            for event in finalEvents { _ = send(.delta(event)) }
        }
        var reason = result.finishReason
        if reason == .stop && !parsed.toolCalls.isEmpty { reason = .toolCalls }
        var usage = CompletionUsage(promptTokens: result.promptTokens, completionTokens: result.tokens.count,
                                    cachedPromptTokens: result.reusedPromptTokens)
        if speculativeTokens > 0 {
            usage.speculative = (drafted: result.draftedTokens, accepted: result.acceptedTokens)
        }
        _ = send(.finish(reason))
        if request.streamIncludeUsage { _ = send(.usage(usage)) }
        return ChatCompletionShape.response(identity: identity, message: parsed.openAIMessage, finishReason: reason,
                                            usage: usage)
    }

    // MARK: constraints

    /// A matcher for the request's response_format / tool_choice, or nil when the output is free. With thinking
    /// on, the constraint applies after the reasoning (`</think>`).
    private func matcher(for request: ChatRequest, thinking: Bool) throws(GLMError) -> GrammarMatcher? {
        guard let (constraint, strict) = request.constraint else { return nil }
        var options = ConstraintOptions()
        options.endTokenIDs = engine.eosTokenIDs.sorted()
        options.strict = strict
        options.reasoning = thinking
        let key = ChatSession.cacheKey(constraint, options)
        let grammar: CompiledGrammar
        if let i = constraints.firstIndex(where: { $0.key == key }) {
            grammar = constraints.remove(at: i).grammar
        } else {
            grammar = try ConstraintCompiler.compile(constraint, vocabulary: try TokenVocabulary.of(tokenizer),
                                                     options: options)
        }
        constraints.append((key, grammar))
        if constraints.count > ChatSession.constraintCacheSize { constraints.removeFirst() }
        return try GrammarMatcher(grammar, sharingCache: true)
    }

    private static func cacheKey(_ c: Constraint, _ o: ConstraintOptions) -> String {
        var key = "\(o.strict) \(o.reasoning) \(o.maxWhitespace) \(o.endTokenIDs) "
        switch c {
        case .jsonSchema(let s): key += "schema " + s.compactJSON
        case .jsonObject: key += "object"
        case .regex(let r): key += "regex " + r
        case .toolCalls(let tools, let choice): key += "tools \(choice) " + JSONValue.array(tools).compactJSON
        }
        return key
    }

    // MARK: identity

    static func identity(model: String) -> CompletionIdentity {
        var random = SeededRandom(seed: SeededRandom.freshSeed())
        var id = "chatcmpl-"
        for _ in 0..<2 {
            let word = String(random.next(), radix: 16)
            id += String(repeating: "0", count: 16 - word.count) + word
        }
        return CompletionIdentity(id: id, created: Int(time(nil)), model: model)
    }

    static func lastPathComponent(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
    }
}
