import ArgumentParser
import GLMClient
import GLMServer
import Glibc
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "An OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health, /tokenize, /detokenize.",
        discussion: """
            Prints "glm serve: listening on http://HOST:PORT" on standard output once it accepts connections \
            (with --port 0, the port the system chose). --parallel slots generate at the same time, each with its \
            own KV cache; a request goes to the idle slot that already holds the longest prefix of its prompt. Up to \
            --queue more wait; beyond that, or after --queue-timeout, the answer is 503 with Retry-After. SIGINT or \
            SIGTERM stops the server.
            """)

    @Argument(help: "A model directory.")
    var model: String

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port (0: any free port, printed when listening).")
    var port: Int = 8080

    @Option(help: "Requests generated at the same time (chat sessions, each with its own KV cache).")
    var parallel: Int = 1

    @Option(help: "Requests that may wait for a slot; more get 503.")
    var queue: Int = 32

    @Option(help: "Seconds a request may wait for a slot before it gets 503.")
    var queueTimeout: Double = 300

    @Option(help: "Seconds a request may generate before it is stopped (504, or an error event when streaming).")
    var timeout: Double = 600

    @Option(help: "KV cache positions per slot (0: min(4096, max_position_embeddings)).")
    var context: Int = 0

    @Option(help: "Largest request body in bytes.")
    var maxBody: Int = 8 << 20

    @Option(help: "Default and upper bound of max_tokens (default: none, up to the context).")
    var maxTokens: Int?

    @Option(help: "The model name clients use (default: the directory's name).")
    var modelName: String?

    @Option(help: "Seconds an idle keep-alive connection stays open.")
    var idleTimeout: Int = 120

    @Option(help: ArgumentHelp("MTP speculative decoding: tokens the model's MTP layer drafts per step (0 off, 1-3); same output, faster. A request's \"speculative_config\" overrides it.", valueName: "k"))
    var speculativeTokens: Int = 0

    @Option(help: ArgumentHelp("KV cache element type of the keys: f16, bf16, f32 or q8_0 (as llama.cpp's -ctk).", valueName: "type"))
    var cacheTypeK: String = "f16"

    @Option(help: ArgumentHelp("KV cache element type of the values: f16, bf16, f32 or q8_0 (as llama.cpp's -ctv).", valueName: "type"))
    var cacheTypeV: String = "f16"

    @Option(help: "Server log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard parallel >= 1 && parallel <= 256 else { throw ValidationError("--parallel must be 1...256") }
        guard queue >= 0 else { throw ValidationError("--queue must not be negative") }
        guard queueTimeout > 0, timeout > 0 else { throw ValidationError("--queue-timeout and --timeout must be positive") }
        guard context >= 0 else { throw ValidationError("--context must not be negative") }
        guard (0...3).contains(speculativeTokens) else { throw ValidationError("--speculative-tokens must be 0...3") }
        for (flag, value) in [("--cache-type-k", cacheTypeK), ("--cache-type-v", cacheTypeV)]
            where Chat.kvTypes[value] == nil {
            throw ValidationError("\(flag) must be f16, bf16, f32 or q8_0, got '\(value)'")
        }
        guard maxBody >= 1024 else { throw ValidationError("--max-body must be at least 1024") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        guard idleTimeout >= 1 else { throw ValidationError("--idle-timeout must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() async throws {
        var server: OpenAIServer?
        try guarded {
            try checkLibrary()
            let loaded = try modelOptions.load(model)
            var options = ServerOptions()
            options.host = host
            options.port = port
            options.parallel = parallel
            options.queueLimit = queue
            options.queueTimeout = queueTimeout
            options.requestTimeout = timeout
            options.contextLength = context
            options.threads = modelOptions.threads
            options.maxBodyBytes = maxBody
            options.maxTokens = maxTokens
            options.modelName = modelName
            options.idleTimeout = idleTimeout
            options.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
            options.speculativeTokens = speculativeTokens
            options.cacheTypeK = cacheTypeK
            options.cacheTypeV = cacheTypeV
            do {
                server = try OpenAIServer(model: loaded, options: options)
            } catch let error as GLMCallError {
                throw CommandFailure("cannot start the slots", error)
            } catch {
                throw CommandFailure("cannot start the server: \(error)", code: Exit.osError)
            }
        }
        guard let server else { return }
        let slots = parallel
        do {
            try await server.run { host, port in
                Terminal.out("glm serve: listening on http://\(host):\(port) (\(slots) slot(s))\n")
            }
        } catch {
            Terminal.error("glm: error: the server stopped: \(error)")
            throw ExitCode(Exit.osError)
        }
    }
}
