import GLMClient
import Glibc
import Hummingbird
import Logging
import NIOCore

/// Settings of `glm serve`.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0: an ephemeral port, reported when the server is listening.
    public var port = 8080
    /// Chat sessions (KV caches) that generate at the same time.
    public var parallel = 1
    /// Requests that may wait for a slot; more are refused with 503.
    public var queueLimit = 32
    /// Seconds a request may wait in the queue before it is refused with 503.
    public var queueTimeout = 300.0
    /// Seconds a request may generate; it is stopped at its next token after that.
    public var requestTimeout = 600.0
    /// Positions per slot's KV cache; 0 = libglm's default, min(4096, max_position_embeddings).
    public var contextLength = 0
    /// Threads per slot; 0 = libglm's default (the number of CPUs).
    public var threads = 0
    /// Largest request body in bytes.
    public var maxBodyBytes = 8 << 20
    /// The `max_tokens` a chat request gets when it sets none, and the most any request may ask for (nil: up to
    /// the context).
    public var maxTokens: Int?
    /// The `model` clients name; by default the model directory's name.
    public var modelName: String?
    /// Seconds an idle keep-alive connection stays open.
    public var idleTimeout = 120
    public var logLevel: Logger.Level = .warning
    /// MTP speculative decoding: drafts per step for requests without "speculative_config" (0 = off).
    public var speculativeTokens = 0
    /// KV cache element types of every slot ("f16", "bf16", "f32", "q8_0").
    public var cacheTypeK = "f16"
    public var cacheTypeV = "f16"

    public init() {}
}

/// An OpenAI-compatible HTTP server on one model: /v1/chat/completions, /v1/completions, /v1/models, /health,
/// /tokenize and /detokenize. Generation runs in the scheduler's slots (threads of their own), short libglm calls
/// on a small blocking pool; the Hummingbird handlers only parse, await and write.
public final class OpenAIServer: Sendable {
    let model: Model
    let template: ChatTemplate
    let tokenizer: Tokenizer
    let scheduler: SlotScheduler
    let pool: BlockingPool
    let options: ServerOptions
    let modelName: String
    let contextLength: Int
    let created: Int

    public init(model: Model, options: ServerOptions) throws {
        guard options.parallel >= 1 else { throw ServerSetupError("--parallel must be at least 1") }
        guard options.queueLimit >= 0 else { throw ServerSetupError("--queue must not be negative") }
        self.model = model
        self.options = options
        template = try ChatTemplate.forChat(modelDirectory: model.path)
        tokenizer = try Tokenizer(path: model.path)
        var chats: [Chat] = []
        for _ in 0..<options.parallel {
            chats.append(try Chat(model: model, contextLength: options.contextLength, threads: options.threads,
                                  speculativeTokens: options.speculativeTokens, cacheTypeK: options.cacheTypeK,
                                  cacheTypeV: options.cacheTypeV))
        }
        guard let scheduler = SlotScheduler(chats: chats, queueLimit: options.queueLimit,
                                            queueTimeout: options.queueTimeout) else {
            throw ServerSetupError("could not start the slot threads")
        }
        self.scheduler = scheduler
        pool = BlockingPool(threads: 2)
        let info = try JSON.parse(try model.info())
        let maxPositions = info["config"]?["max_position_embeddings"]?.intValue ?? 4096
        contextLength = options.contextLength > 0 ? options.contextLength : min(4096, maxPositions)
        let trimmed = model.path.hasSuffix("/") ? String(model.path.dropLast()) : model.path
        modelName = options.modelName ?? String(trimmed.split(separator: "/").last ?? Substring(trimmed))
        created = time(nil)
    }

    /// Serves until SIGINT or SIGTERM. `onListening` receives the bound host and port (the real one for port 0).
    public func run(onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: OpenAIErrorMiddleware())
        router.get("/health") { _, _ in self.health() }
        router.get("/v1/models") { _, _ in self.models() }
        router.get("/v1/models/{id}") { _, context in try self.model(id: context.parameters.get("id") ?? "") }
        router.post("/v1/chat/completions") { request, context in try await self.chatCompletions(request, context.channel) }
        router.post("/v1/completions") { request, context in try await self.completions(request, context.channel) }
        router.post("/tokenize") { request, _ in try await self.tokenize(request) }
        router.post("/detokenize") { request, _ in try await self.detokenize(request) }

        var logger = Logger(label: "glm-serve")
        logger.logLevel = options.logLevel
        let host = options.host
        let app = Application(
            router: router,
            // ClientWatch: a client that leaves while its request waits or generates cancels it (ClientWatch.swift).
            server: .http1(configuration: .init(additionalChannelHandlers: [ClientWatch()],
                                                idleTimeout: .seconds(Int64(options.idleTimeout)))),
            configuration: .init(address: .hostname(host, port: options.port), serverName: "libglm"),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.runService()
    }

    // MARK: - small routes

    func health() -> Response {
        let s = scheduler.snapshot()
        let c = s.counters
        return jsonResponse(.object([
            ("status", .string("ok")),
            ("model", .string(modelName)),
            ("slots", .object([("total", JSON(scheduler.slotCount)), ("idle", JSON(s.idle)), ("busy", JSON(s.busy))])),
            ("queue", .object([("length", JSON(s.queued)), ("limit", JSON(scheduler.queueLimit))])),
            ("requests", .object([
                ("submitted", JSON(c.submitted)), ("completed", JSON(c.completed)), ("cancelled", JSON(c.cancelled)),
                ("timed_out", JSON(c.timedOut)), ("failed", JSON(c.failed)), ("rejected", JSON(c.rejected)),
            ])),
            ("tokens", .object([
                ("prompt", JSON(c.promptTokens)), ("cached", JSON(c.cachedTokens)), ("completion", JSON(c.completionTokens)),
            ])),
        ]))
    }

    var modelObject: JSON {
        .object([("id", .string(modelName)), ("object", .string("model")), ("created", JSON(created)),
                 ("owned_by", .string("libglm")), ("max_model_len", JSON(contextLength))])
    }

    func models() -> Response {
        jsonResponse(.object([("object", .string("list")), ("data", .array([modelObject]))]))
    }

    func model(id: String) throws -> Response {
        guard id == modelName else { throw modelNotFound(id) }
        return jsonResponse(modelObject)
    }

    func modelNotFound(_ name: String) -> APIError {
        APIError(status: .notFound, message: "The model `\(name)` does not exist; this server serves `\(modelName)`.",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    // MARK: - request bodies

    func readJSON(_ request: Request) async throws -> JSON {
        let buffer = try await request.body.collect(upTo: options.maxBodyBytes)
        let text = String(buffer: buffer)
        let body: JSON
        do {
            body = try JSON.parse(text)
        } catch {
            throw APIError.invalid("We could not parse the JSON body of your request: \(error)", code: "invalid_json")
        }
        guard case .object = body else { throw APIError.invalid("The request body must be a JSON object.") }
        return body
    }

    /// `model` may be absent (libglm's default name answers) or must name the served model.
    func checkModel(_ body: JSON) throws {
        switch body["model"] {
        case nil, .null?: return
        case .string(let name)?: if name != modelName { throw modelNotFound(name) }
        case let other?: throw APIError.invalid("\"model\" is \(other.text), expected a string", param: "model")
        }
    }

    func boolField(_ body: JSON, _ key: String) throws -> Bool? {
        switch body[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        case let other?: throw APIError.invalid("\"\(key)\" is \(other.text), expected true or false", param: key)
        }
    }

    /// The server's limit on max_tokens: over it is a 400; without one, the server's default applies.
    func applyTokenLimit(_ body: inout JSON) throws {
        for key in ["max_completion_tokens", "max_tokens"] {
            guard let value = body[key], !value.isNull else { continue }
            // A non-integer is libglm's to refuse, with its own message.
            guard let n = value.intValue else { continue }
            let limit = options.maxTokens ?? contextLength
            if n > limit {
                throw APIError.invalid("\"\(key)\" is \(n), more than this server allows (\(limit))", param: key,
                                       code: "invalid_value")
            }
            return
        }
        if let limit = options.maxTokens { body.set("max_tokens", JSON(limit)) }
    }

    // MARK: - /v1/chat/completions and /v1/completions

    func chatCompletions(_ request: Request, _ channel: any Channel) async throws -> Response {
        var body = try await readJSON(request)
        try checkModel(body)
        if body["model"] == nil { body.set("model", .string(modelName)) }
        let stream = try boolField(body, "stream") ?? false
        try applyTokenLimit(&body)
        let tokens = await chatPromptTokens(body)
        return try await generate(requestJSON: body.text, promptTokens: tokens, stream: stream, shape: .chat,
                                  channel: channel)
    }

    /// Text completions: the prompt as it is, the output unparsed (libglm's raw "prompt" request).
    func completions(_ request: Request, _ channel: any Channel) async throws -> Response {
        var body = try await readJSON(request)
        try checkModel(body)
        if body["model"] == nil { body.set("model", .string(modelName)) }
        let stream = try boolField(body, "stream") ?? false
        switch body["prompt"] {
        case .string?: break
        case .array(let items)? where items.count == 1 && items[0].stringValue != nil:
            body.set("prompt", items[0])
        case .array?:
            throw APIError.invalid("\"prompt\" must be one string (lists of prompts and token ids are not supported)",
                                   param: "prompt", code: "unsupported_parameter")
        case nil, .null?:
            throw APIError.invalid("\"prompt\" is required", param: "prompt")
        case let other?:
            throw APIError.invalid("\"prompt\" is \(other.text), expected a string", param: "prompt")
        }
        if try boolField(body, "echo") == true {
            throw APIError.invalid("\"echo\" is not supported", param: "echo", code: "unsupported_parameter")
        }
        if let suffix = body["suffix"], !suffix.isNull {
            throw APIError.invalid("\"suffix\" is not supported", param: "suffix", code: "unsupported_parameter")
        }
        if let best = body["best_of"], !best.isNull, best.intValue != 1 {
            throw APIError.invalid("\"best_of\" must be 1", param: "best_of", code: "unsupported_parameter")
        }
        // Text completions' logprobs is a count (chat's is a boolean): 0 or null asks for nothing.
        if let logprobs = body["logprobs"], !logprobs.isNull {
            guard logprobs.intValue == 0 else {
                throw APIError.invalid("\"logprobs\" is not supported", param: "logprobs", code: "unsupported_parameter")
            }
            body.set("logprobs", nil)
        }
        // OpenAI's default for text completions is 16 tokens.
        if body["max_tokens"] == nil || body["max_tokens"] == .null { body.set("max_tokens", JSON(options.maxTokens.map { min($0, 16) } ?? 16)) }
        try applyTokenLimit(&body)
        let prompt = body["prompt"]?.stringValue ?? ""
        let tokens = (try? await pool.run { [tokenizer] in try tokenizer.tokenize(prompt, addSpecialTokens: true) }) ?? []
        return try await generate(requestJSON: body.text, promptTokens: tokens, stream: stream, shape: .completion,
                                  channel: channel)
    }

    /// The prompt's tokens as libglm's chat path will render them, for the choice of slot; [] if they cannot be
    /// rendered (libglm then reports why, from the slot).
    func chatPromptTokens(_ body: JSON) async -> [Int32] {
        let render = ChatRequests.renderRequest(chat: body).text
        return (try? await pool.run { [template, tokenizer] in
            try tokenizer.tokenize(try template.render(requestJSON: render), addSpecialTokens: false)
        }) ?? []
    }

    enum Shape { case chat, completion }

    private enum StreamItem: Sendable {
        case event(ChatEvent)
        case done(JobOutcome)
    }

    /// The first item decides the response: an error before any event is an error status; an event starts the
    /// event stream. The box lets the response body go on with the same iterator.
    private final class Events: @unchecked Sendable {
        var iterator: AsyncStream<StreamItem>.Iterator
        init(_ stream: AsyncStream<StreamItem>) { iterator = stream.makeAsyncIterator() }
        func next() async -> StreamItem? { await iterator.next() }
    }

    /// Runs one request on a slot. `channel` is the client's connection: if the client leaves before the reply is
    /// written (while the request waits in the queue or generates), the request is cancelled and its slot or queue
    /// place freed at once, streamed or not.
    func generate(requestJSON: String, promptTokens: [Int32], stream: Bool, shape: Shape,
                  channel: any Channel) async throws -> Response {
        let scheduler = self.scheduler
        if !stream {
            var submitted: GenerationJob?
            let outcome: JobOutcome? = await withCheckedContinuation { continuation in
                let job = GenerationJob(requestJSON: requestJSON, promptTokens: promptTokens,
                                        timeoutSeconds: options.requestTimeout, onEvent: nil,
                                        onDone: { continuation.resume(returning: $0) })
                guard scheduler.submit(job) else {
                    continuation.resume(returning: nil)
                    return
                }
                channel.watchClient(for: job) { scheduler.cancel($0) }
                submitted = job
            }
            if let submitted { channel.unwatchClient(for: submitted) }
            guard let outcome else { throw busyError() }
            let response = try finishedResponse(outcome)
            return jsonResponse(text: shape == .chat ? response : completionObject(fromChat: response))
        }

        let (items, continuation) = AsyncStream<StreamItem>.makeStream()
        let job = GenerationJob(requestJSON: requestJSON, promptTokens: promptTokens,
                                timeoutSeconds: options.requestTimeout,
                                onEvent: { continuation.yield(.event($0)) },
                                onDone: { continuation.yield(.done($0)); continuation.finish() })
        // The reader went away (the response body stopped iterating): stop generating.
        continuation.onTermination = { _ in scheduler.cancel(job) }
        guard scheduler.submit(job) else { throw busyError() }
        // Until the first event nothing is written: only the connection tells that the client left (in the queue).
        channel.watchClient(for: job) { scheduler.cancel($0) }
        let events = Events(items)
        let first = await events.next()
        if case .done(let outcome)? = first {
            channel.unwatchClient(for: job)
            _ = try finishedResponse(outcome)  // throws the error; a finished stream always starts with an event
            throw APIError(status: .internalServerError, message: "the request ended before its first event",
                           type: "server_error", param: nil, code: nil)
        }
        guard case .event(let firstEvent)? = first else {
            channel.unwatchClient(for: job)
            throw APIError(status: .internalServerError, message: "no events", type: "server_error", param: nil, code: nil)
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                if let data = self.sse(firstEvent, shape: shape) { try await writer.write(data) }
                while let item = await events.next() {
                    switch item {
                    case .event(let event):
                        if let data = self.sse(event, shape: shape) { try await writer.write(data) }
                    case .done(let outcome):
                        do {
                            _ = try self.finishedResponse(outcome)
                        } catch let error as APIError {
                            try await writer.write(ByteBuffer(string: "data: \(error.json.text)\n\n"))
                        }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    }
                }
                try await writer.finish(nil)
                channel.unwatchClient(for: job)
            } catch {
                channel.unwatchClient(for: job)
                scheduler.cancel(job)  // the client is gone: the slot stops at its next token
                throw error
            }
        })
    }

    func busyError() -> APIError {
        .busy("The server is busy: \(scheduler.slotCount) slot(s) generating and \(scheduler.queueLimit) request(s)"
            + " queued. Retry later.")
    }

    /// The chat.completion JSON of a finished job, or the error it ended with.
    func finishedResponse(_ outcome: JobOutcome) throws -> String {
        switch outcome {
        case .finished(let result):
            return result.responseJSON
        case .timedOut:
            throw APIError(status: .gatewayTimeout,
                           message: "the request generated for longer than the server allows (--timeout \(Int(options.requestTimeout)) s)",
                           type: "server_error", param: nil, code: "timeout")
        case .failed(let error):
            throw APIError(error)
        case .dropped(.queueTimeout):
            throw APIError.busy("The request waited longer than --queue-timeout (\(Int(options.queueTimeout)) s) for a slot.")
        case .dropped(.clientGone):
            throw APIError(status: .badRequest, message: "cancelled", type: "invalid_request_error", param: nil, code: "cancelled")
        }
    }

    /// One server-sent event: chat chunks exactly as libglm's event callback gives them; for text completions, the
    /// same events in the text_completion shape.
    func sse(_ event: ChatEvent, shape: Shape) -> ByteBuffer? {
        switch shape {
        case .chat:
            return ByteBuffer(string: "data: \(event.chunkJSON)\n\n")
        case .completion:
            guard let chunk = try? JSON.parse(event.chunkJSON) else { return nil }
            switch event.kind {
            case .role:
                return nil
            case .delta:
                guard let text = chunk["choices"]?[0]?["delta"]?["content"]?.stringValue else { return nil }
                return ByteBuffer(string: "data: \(completionChunk(chunk, text: text, finish: .null).text)\n\n")
            case .finish:
                let reason = chunk["choices"]?[0]?["finish_reason"] ?? .null
                return ByteBuffer(string: "data: \(completionChunk(chunk, text: "", finish: reason).text)\n\n")
            case .usage:
                var usage = completionChunk(chunk, text: nil, finish: .null)
                usage.set("usage", chunk["usage"])
                return ByteBuffer(string: "data: \(usage.text)\n\n")
            }
        }
    }

    private func completionID(_ chatID: JSON?) -> JSON {
        guard let id = chatID?.stringValue else { return .string("cmpl-") }
        return .string(id.hasPrefix("chatcmpl-") ? "cmpl-" + id.dropFirst("chatcmpl-".count) : id)
    }

    /// A text_completion chunk; `text` nil: no choices (the usage chunk).
    func completionChunk(_ chunk: JSON, text: String?, finish: JSON) -> JSON {
        var choices: [JSON] = []
        if let text {
            choices.append(.object([("index", JSON(0)), ("text", .string(text)), ("logprobs", .null),
                                    ("finish_reason", finish)]))
        }
        return .object([("id", completionID(chunk["id"])), ("object", .string("text_completion")),
                        ("created", chunk["created"] ?? JSON(created)), ("model", chunk["model"] ?? .string(modelName)),
                        ("choices", .array(choices))])
    }

    /// The text_completion object for a chat.completion response of a raw prompt (its content is the text).
    func completionObject(fromChat text: String) -> String {
        guard let chat = try? JSON.parse(text) else { return text }
        let choice = chat["choices"]?[0]
        var out = completionChunk(chat, text: choice?["message"]?["content"]?.stringValue ?? "",
                                  finish: choice?["finish_reason"] ?? .null)
        out.set("usage", chat["usage"])
        return out.text
    }

    // MARK: - /tokenize and /detokenize (vLLM's shapes)

    /// {"prompt": "...", "add_special_tokens": true} or a chat {"messages", "tools", "add_generation_prompt",
    /// "chat_template_kwargs", "add_special_tokens": false}, optionally "return_token_strs" →
    /// {"count", "max_model_len", "tokens", "token_strs"}. The chat form renders exactly as /v1/chat/completions.
    func tokenize(_ request: Request) async throws -> Response {
        let body = try await readJSON(request)
        try checkModel(body)
        let text: String
        let addSpecial: Bool
        if body["messages"] != nil {
            let render = ChatRequests.renderRequest(chat: body).text
            text = try await pool.run { [template] in try template.render(requestJSON: render) }
            addSpecial = try boolField(body, "add_special_tokens") ?? false
        } else if let prompt = body["prompt"] {
            guard let p = prompt.stringValue else {
                throw APIError.invalid("\"prompt\" is \(prompt.text), expected a string", param: "prompt")
            }
            text = p
            addSpecial = try boolField(body, "add_special_tokens") ?? true
        } else {
            throw APIError.invalid("give \"prompt\" (text) or \"messages\" (a chat)", param: "prompt")
        }
        let wantStrings = try boolField(body, "return_token_strs") ?? false
        let (tokens, strings): ([Int32], [String]) = try await pool.run { [tokenizer] in
            let ids = try tokenizer.tokenize(text, addSpecialTokens: addSpecial)
            let strs = wantStrings ? try ids.map { String(decoding: try tokenizer.piece($0), as: UTF8.self) } : []
            return (ids, strs)
        }
        var out = JSON.object([("count", JSON(tokens.count)), ("max_model_len", JSON(contextLength)),
                               ("tokens", .array(tokens.map { JSON(Int($0)) }))])
        if wantStrings { out.set("token_strs", .array(strings.map { .string($0) })) }
        return jsonResponse(out)
    }

    /// {"tokens": [ids]} → {"prompt": text}.
    func detokenize(_ request: Request) async throws -> Response {
        let body = try await readJSON(request)
        try checkModel(body)
        guard let list = body["tokens"]?.arrayValue else {
            throw APIError.invalid("\"tokens\" must be a list of token ids", param: "tokens")
        }
        var ids: [Int32] = []
        for item in list {
            guard let n = item.intValue, let id = Int32(exactly: n) else {
                throw APIError.invalid("\"tokens\" holds \(item.text), expected token ids", param: "tokens")
            }
            ids.append(id)
        }
        let tokens = ids
        let text = try await pool.run { [tokenizer] in try tokenizer.detokenize(tokens, skipSpecialTokens: false) }
        return jsonResponse(.object([("prompt", .string(text))]))
    }

    // MARK: -

    func jsonResponse(_ json: JSON) -> Response { jsonResponse(text: json.text) }

    func jsonResponse(text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

public struct ServerSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
