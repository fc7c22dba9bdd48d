import ArgumentParser
import GLMClient
import Glibc

// The commands that load weights: info, bench, complete, chat.

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "A model's configuration, size, KV cache per token and kernel path; or, with --system, this machine's.")

    @Argument(help: "A model directory (not needed with --system).")
    var model: String?

    @Flag(help: "What this CPU and this libglm can run (glm_system_info).")
    var system = false

    @Flag(help: "JSON output.")
    var json = false

    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        if !system && model == nil { throw ValidationError("give MODEL, or --system") }
    }

    func run() throws {
        try guarded {
            try checkLibrary()
            if system {
                let info = try LibGLM.systemInfo()
                if json { Terminal.out(info + "\n") } else { printSystem(try JSON.parse(info)) }
                if model == nil { return }
            }
            guard let path = model else { return }
            let loaded = try modelOptions.load(path)
            let info = try JSON.parse(try loaded.info())
            let kv = KVCacheSize(config: info["config"] ?? .null, hasMTP: info["has_mtp"]?.boolValue ?? false)
            if json {
                var out = info
                out.set("path", .string(path))
                out.set("kv_cache", kv.json)
                Terminal.out(out.text + "\n")
            } else {
                printModel(path: path, info: info, kv: kv)
            }
        }
    }

    func printSystem(_ info: JSON) {
        let cpu = info["cpu"]
        let kernels = info["kernels"]
        let features = cpu?["features"]?.arrayValue?.compactMap(\.stringValue).joined(separator: " ") ?? ""
        let available = kernels?["available"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? ""
        let missing = kernels?["missing"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? ""
        var lines = [
            ("libglm", "\(info["version"]?.stringValue ?? "?") (API \(info["api_version"]?.intValue ?? 0))"),
            ("cpu", "\(cpu?["brand"]?.stringValue ?? "?") (\(cpu?["vendor"]?.stringValue ?? "?"))"),
            ("features", features),
            ("kernels", kernels?["supported"]?.boolValue == true
                ? "\(available); default \(kernels?["default"]?.stringValue ?? "none")"
                : "not supported (missing \(missing)): tokenizer, templates and parsers only"),
            ("threads", "\(info["default_threads"]?.intValue ?? 0) by default"),
        ]
        if let env = kernels?["environment"]?.stringValue { lines.append(("GLM_KERNELS", env)) }
        if let env = info["gemm"]?["environment"]?.stringValue { lines.append(("GLM_GEMM", env)) }
        if let core = info["openblas"]?["core"]?.stringValue { lines.append(("openblas", core)) }
        for (key, value) in lines { Terminal.out(key.padding(12) + value + "\n") }
    }

    func printModel(path: String, info: JSON, kv: KVCacheSize) {
        let c = info["config"] ?? .null
        func int(_ key: String) -> Int { c[key]?.intValue ?? 0 }
        let architecture = c["architectures"]?[0]?.stringValue ?? "?"
        let layers = int("num_hidden_layers")
        let mtp = int("num_nextn_predict_layers")
        let context = int("max_position_embeddings")
        let lines: [(String, String)] = [
            ("model", path),
            ("architecture", "\(architecture) (\(c["model_type"]?.stringValue ?? "?"))"),
            ("layers", "\(layers) (\(int("first_k_dense_replace")) dense), \(mtp) MTP layer(s)\(info["has_mtp"]?.boolValue == true ? "" : mtp > 0 ? ", MTP weights absent" : "")"),
            ("attention", "hidden \(int("hidden_size")), \(int("num_attention_heads")) heads, \(kv.kvHeads) KV heads × head_dim \(kv.headDim)"),
            ("experts", "\(int("n_routed_experts")) routed (\(int("num_experts_per_tok")) per token), \(int("n_shared_experts")) shared"),
            ("vocabulary", "\(int("vocab_size"))"),
            ("context", "\(context) positions (max_position_embeddings)"),
            ("parameters", countText(info["parameter_count"]?.intValue ?? 0)),
            ("weights", "\(bytesText(info["bytes_mapped"]?.intValue ?? 0)) mapped, \(info["dtype"]?.stringValue ?? "?")"),
            ("KV cache", "\(bytesText(kv.bytesPerToken)) per token (f16, the default: \(kv.layers) layers × 2 × \(kv.kvHeads) KV heads × \(kv.headDim) × 2 B; f32 twice that, q8_0 34 B per 32 values); \(bytesText(kv.bytesPerToken * min(4096, max(context, 1)))) for \(min(4096, max(context, 1))) positions"),
            ("kernels", "\(info["kernels"]?.stringValue ?? "?") (prefill GEMM: \(info["gemm"]?.stringValue ?? "?")), \(info["threads"]?.intValue ?? 0) threads"),
            ("bf16 inputs", info["bf16_inputs"]?.stringValue ?? "?"),
            ("cpu", info["cpu"]?.stringValue ?? "?"),
        ]
        for (key, value) in lines { Terminal.out(key.padding(12) + value + "\n") }
    }
}

/// The KV cache one token takes: keys and values of every layer's KV heads in f16 (sessions' default type; the
/// library's "kv_bytes_per_token" gives every type), plus the MTP layer's own cache when the model has MTP weights.
struct KVCacheSize {
    let layers: Int
    let mainLayers: Int
    let kvHeads: Int
    let headDim: Int

    init(config c: JSON, hasMTP: Bool) {
        mainLayers = c["num_hidden_layers"]?.intValue ?? 0
        layers = mainLayers + (hasMTP ? c["num_nextn_predict_layers"]?.intValue ?? 0 : 0)
        let heads = c["num_attention_heads"]?.intValue ?? 0
        kvHeads = c["num_key_value_heads"]?.intValue ?? heads
        headDim = c["head_dim"]?.intValue ?? (heads > 0 ? (c["hidden_size"]?.intValue ?? 0) / heads : 0)
    }

    var bytesPerToken: Int { layers * 2 * kvHeads * headDim * 2 }

    var json: JSON {
        .object([("bytes_per_token", JSON(bytesPerToken)), ("layers", JSON(layers)),
                 ("mtp_layers", JSON(layers - mainLayers)), ("kv_heads", JSON(kvHeads)), ("head_dim", JSON(headDim)),
                 ("dtype", .string("f16"))])
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Prefill and decode speed in tokens/s, as llama-bench's pp and tg tests.",
        discussion: """
            ppN evaluates N prompt tokens in one call (the last token's logits computed); tgN decodes N tokens one \
            at a time, each with its logits. Token ids are fixed, so runs compare. Each test runs once to warm \
            up, then --repetitions times on a fresh cache; the table shows the mean and standard deviation.
            """)

    @Argument(help: "A model directory.")
    var model: String

    @Option(name: [.customShort("p"), .long], help: "Prompt tokens (pp test); 0 skips it.")
    var prompt: Int = 512

    @Option(name: [.customShort("n"), .long], help: "Generated tokens (tg test); 0 skips it.")
    var generate: Int = 128

    @Option(name: [.customShort("r"), .long], help: "Repetitions of each test.")
    var repetitions: Int = 3

    @Option(help: "Tokens per forward chunk during prefill (0: libglm's default).")
    var batchSize: Int = 0

    @Flag(help: "JSON output (one object per test).")
    var json = false

    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        guard prompt >= 0, generate >= 0, prompt + generate > 0 else { throw ValidationError("-p and -n must not be negative, and not both 0") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        guard batchSize >= 0 else { throw ValidationError("--batch-size must not be negative") }
    }

    func run() throws {
        try guarded {
            try checkLibrary()
            let loaded = try modelOptions.load(model)
            let info = try JSON.parse(try loaded.info())
            let vocab = try loaded.vocabSize()
            let context = prompt + generate + 1
            let maxPositions = info["config"]?["max_position_embeddings"]?.intValue ?? context
            guard context <= maxPositions else {
                throw CommandFailure("-p \(prompt) + -n \(generate) exceeds the model's \(maxPositions) positions", code: Exit.usage)
            }
            let session: Session
            do { session = try Session(model: loaded, contextLength: context, threads: modelOptions.threads, batchSize: batchSize) } catch {
                throw CommandFailure("cannot create a session of \(context) positions", error)
            }
            var logits = [Float](repeating: 0, count: vocab)
            // Fixed, spread-out ids: the same work every run (the model's routing depends on the tokens).
            let ids = (0..<max(prompt, generate)).map { Int32(($0 * 7919 + 13) % vocab) }
            var results: [(test: String, tokens: Int, rates: [Double])] = []
            for (name, n) in [("pp\(prompt)", prompt), ("tg\(generate)", generate)] where n > 0 {
                var rates: [Double] = []
                // One run more than asked, not counted: the first pays for page faults on the mapped weights and
                // for warming caches (llama-bench warms up the same way).
                for r in -1..<repetitions {
                    if Terminal.stderrIsTTY { modelOptions.progress("\(name): run \(r + 2)/\(repetitions + 1)\r") }
                    try session.truncate(0)
                    let seconds: Double
                    if name.hasPrefix("pp") {
                        let start = Clock.now()
                        try session.eval(Array(ids[0..<n]), lastLogits: &logits)
                        seconds = Clock.now() - start
                    } else {
                        try session.eval([ids[0]], lastLogits: &logits)  // a first position, as after a prompt
                        let start = Clock.now()
                        for i in 0..<n { try session.eval([ids[i]], lastLogits: &logits) }
                        seconds = Clock.now() - start
                    }
                    if r >= 0 { rates.append(Double(n) / max(seconds, 1e-9)) }
                }
                results.append((name, n, rates))
            }
            if Terminal.stderrIsTTY { modelOptions.progress(String(repeating: " ", count: 24) + "\r") }
            let name = model.split(separator: "/").last.map(String.init) ?? model
            let backend = "\(info["kernels"]?.stringValue ?? "?")/\(info["gemm"]?.stringValue ?? "?")"
            let threads = info["threads"]?.intValue ?? 0
            let params = info["parameter_count"]?.intValue ?? 0
            if json {
                for r in results {
                    let (mean, sd) = stats(r.rates)
                    Terminal.out(JSON.object([
                        ("model", .string(name)), ("parameters", JSON(params)), ("bytes", JSON(info["bytes_mapped"]?.intValue ?? 0)),
                        ("kernels", info["kernels"] ?? .null), ("gemm", info["gemm"] ?? .null), ("threads", JSON(threads)),
                        ("test", .string(r.test)), ("tokens", JSON(r.tokens)), ("repetitions", JSON(repetitions)),
                        ("tokens_per_second", JSON(mean)), ("stddev", JSON(sd)),
                        ("samples", .array(r.rates.map { JSON($0) })),
                    ]).text + "\n")
                }
            } else {
                let header = ["model", "params", "size", "backend", "threads", "test", "t/s"]
                var rows = [header]
                for r in results {
                    let (mean, sd) = stats(r.rates)
                    rows.append([name, countText(params), bytesText(info["bytes_mapped"]?.intValue ?? 0), backend,
                                 String(threads), r.test, String(format1: mean) + " ± " + String(format1: sd)])
                }
                printTable(rows)
            }
        }
    }

    func stats(_ xs: [Double]) -> (Double, Double) {
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.count > 1 ? xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count - 1) : 0
        return (mean, variance.squareRoot())
    }

    /// A Markdown table as llama-bench prints it: columns padded, the last (the numbers) right-aligned.
    func printTable(_ rows: [[String]]) {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func pad(_ cell: String, _ i: Int) -> String {
            let fill = String(repeating: " ", count: widths[i] - cell.count)
            return i == widths.count - 1 ? fill + cell : cell + fill
        }
        func line(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |\n" }
        Terminal.out(line(rows[0].enumerated().map { pad($1, $0) }))
        Terminal.out(line(widths.enumerated().map { i, w in
            i == widths.count - 1 ? String(repeating: "-", count: w - 1) + ":" : String(repeating: "-", count: w)
        }))
        for row in rows.dropFirst() { Terminal.out(line(row.enumerated().map { pad($1, $0) })) }
    }
}

/// Sampling options shared by complete and chat.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Most tokens to generate (default: 256 for a raw prompt; a chat runs until it ends or the context is full).")
    var maxTokens: Int?

    @Option(help: "Sampling temperature (default: generation_config.json's; 0 is greedy).")
    var temperature: Double?

    @Option(help: "Nucleus sampling probability mass.")
    var topP: Double?

    @Option(help: "Seed for reproducible sampling.")
    var seed: Int?

    @Option(help: "A stop string (repeatable).")
    var stop: [String] = []

    @Flag(name: .customLong("no-think"), help: "Answer without reasoning (chat_template_kwargs enable_thinking false).")
    var noThink = false

    @Option(help: "Positions of the KV cache (0: libglm's default, min(4096, max_position_embeddings)).")
    var context: Int = 0

    func validate() throws {
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        guard context >= 0 else { throw ValidationError("--context must not be negative") }
    }

    func apply(to request: inout JSON, chat: Bool) {
        if let maxTokens { request.set("max_tokens", JSON(maxTokens)) }
        if let temperature { request.set("temperature", JSON(temperature)) }
        if let topP { request.set("top_p", JSON(topP)) }
        if let seed { request.set("seed", JSON(seed)) }
        if !stop.isEmpty { request.set("stop", .array(stop.map { .string($0) })) }
        if noThink && chat {
            var kwargs = request["chat_template_kwargs"] ?? .object([])
            kwargs.set("enable_thinking", .bool(false))
            request.set("chat_template_kwargs", kwargs)
        }
    }
}

/// Prints a streamed reply: reasoning dimmed (on a terminal), content plain, tool calls announced; and collects the
/// timing of the first and last token for tokens/s.
final class StreamPrinter {
    let color: Bool
    let reasoningToStderr: Bool
    private var section = ""
    var firstTokenAt: Double?
    var lastTokenAt: Double?

    init(color: Bool, reasoningToStderr: Bool) {
        self.color = color
        self.reasoningToStderr = reasoningToStderr
    }

    func handle(_ event: ChatEvent) {
        guard event.kind == .delta, let delta = try? JSON.parse(event.deltaJSON) else { return }
        let now = Clock.now()
        if firstTokenAt == nil { firstTokenAt = now }
        lastTokenAt = now
        if let text = delta["reasoning_content"]?.stringValue {
            let start = section == "reasoning" ? "" : (color ? Terminal.dim : "") + (section.isEmpty ? "" : "\n")
            section = "reasoning"
            if reasoningToStderr { Terminal.err(start + text) } else { Terminal.out(start + text) }
        } else if let text = delta["content"]?.stringValue {
            if section != "content" {
                let start = (color ? Terminal.reset : "") + (section.isEmpty ? "" : "\n")
                if reasoningToStderr && section == "reasoning" { Terminal.err(start) } else { Terminal.out(start) }
                section = "content"
            }
            Terminal.out(text)
        } else if let calls = delta["tool_calls"]?.arrayValue {
            for call in calls {
                if let name = call["function"]?["name"]?.stringValue {
                    Terminal.out((color ? Terminal.reset : "") + (section.isEmpty ? "" : "\n") + "[tool call] \(name) ")
                    section = "tool"
                }
                if let piece = call["function"]?["arguments"]?.stringValue { Terminal.out(piece) }
            }
        }
    }

    func end() {
        if color { Terminal.out(Terminal.reset) }
        if !section.isEmpty { Terminal.out("\n") }
        section = ""
    }

    /// "12 prompt tokens (8 cached), 30 completion tokens, 95.2 tokens/s".
    func usageLine(_ response: JSON, started: Double) -> String {
        let usage = response["usage"]
        let prompt = usage?["prompt_tokens"]?.intValue ?? 0
        let cached = usage?["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0
        let completion = usage?["completion_tokens"]?.intValue ?? 0
        let end = lastTokenAt ?? Clock.now()
        var line = "\(prompt) prompt tokens (\(cached) cached), \(completion) completion tokens"
        if let first = firstTokenAt {
            line += ", first token after \(String(format1: first - started)) s"
            if completion > 1 && end > first { line += ", \(String(format1: Double(completion - 1) / (end - first), digits: 1)) tokens/s" }
        }
        return line
    }
}

struct CompleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "complete",
        abstract: "One completion: of a raw PROMPT (text as is, no template), or of a chat from --messages.",
        discussion: """
            The reply streams to standard output (a chat's reasoning to standard error, dimmed on a terminal); \
            the token counts and speed follow on standard error. With --json nothing streams and the whole response \
            (OpenAI chat.completion) is printed.
            """)

    @Argument(help: "A model directory.")
    var model: String

    @Argument(help: "The raw prompt (not with --messages).")
    var prompt: String?

    @Option(help: "A chat: a JSON list of messages, or a request object ('-': standard input).")
    var messages: String?

    @Option(help: "OpenAI tools (a JSON list) for the chat.")
    var tools: String?

    @Flag(help: "Print the whole response as JSON.")
    var json = false

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        if (prompt == nil) == (messages == nil) { throw ValidationError("give either PROMPT or --messages") }
        if tools != nil && messages == nil { throw ValidationError("--tools needs --messages (a raw prompt has no template)") }
    }

    func run() throws {
        try guarded {
            try checkLibrary()
            var request: JSON
            if let prompt {
                request = .object([("prompt", .string(prompt))])
                if sampling.maxTokens == nil { request.set("max_tokens", JSON(256)) }
            } else {
                request = try Files.readChatRequest(messages ?? "-")
                if let tools { request.set("tools", try Files.readTools(tools)) }
            }
            sampling.apply(to: &request, chat: prompt == nil)
            let loaded = try modelOptions.load(model)
            let chat: Chat
            do { chat = try Chat(model: loaded, contextLength: sampling.context, threads: modelOptions.threads) } catch {
                throw CommandFailure("cannot start a chat session", error)
            }
            let printer = StreamPrinter(color: Terminal.stdoutIsTTY, reasoningToStderr: true)
            let started = Clock.now()
            let result: ChatResult
            do {
                result = try chat.complete(requestJSON: request.text, onEvent: json ? nil : { printer.handle($0); return true })
            } catch {
                throw CommandFailure("the completion failed", error)
            }
            if json {
                Terminal.out(result.responseJSON + "\n")
                return
            }
            printer.end()
            let response = (try? JSON.parse(result.responseJSON)) ?? .null
            let finish = response["choices"]?[0]?["finish_reason"]?.stringValue ?? "?"
            modelOptions.progress("[\(finish)] \(printer.usageLine(response, started: started))\n")
        }
    }
}

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "An interactive chat: streamed replies, reasoning dimmed, tools, /reset.",
        discussion: """
            Type a message and press Enter. /reset starts over (and clears the KV cache), /exit or end of input \
            quits. With --tools the model may call the tools declared in the file: glm shows each call and asks for \
            its result (one line, usually JSON), which goes back to the model as a tool message. After each reply: \
            the token counts (cached = reused from the previous turn) and the decoding speed.
            """)

    @Argument(help: "A model directory.")
    var model: String

    @Option(help: "OpenAI tools (a JSON list) the model may call.")
    var tools: String?

    @Option(help: "A system message.")
    var system: String?

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        try guarded {
            try checkLibrary()
            let toolList = try tools.map { try Files.readTools($0) }
            let loaded = try modelOptions.load(model)
            let chat: Chat
            do { chat = try Chat(model: loaded, contextLength: sampling.context, threads: modelOptions.threads) } catch {
                throw CommandFailure("cannot start a chat session", error)
            }
            let interactive = isatty(0) == 1
            let color = Terminal.stdoutIsTTY
            var messages: [JSON] = system.map { [.object([("role", .string("system")), ("content", .string($0))])] } ?? []
            if interactive { Terminal.err("glm chat: /reset starts over, /exit quits\n") }
            while true {
                if interactive { Terminal.out("> ") }
                guard let line = readLine() else { break }
                let text = line.trimmingSpaces
                if text.isEmpty { continue }
                if text == "/exit" || text == "/quit" { break }
                if text == "/reset" {
                    messages = system.map { [.object([("role", .string("system")), ("content", .string($0))])] } ?? []
                    try chat.reset()
                    Terminal.out("[reset]\n")
                    continue
                }
                // Where this turn starts: a turn that fails is taken back whole (its user message, and any tool
                // calls and results of earlier rounds), so no half-answered tool call stays in the conversation.
                let turnStart = messages.count
                messages.append(.object([("role", .string("user")), ("content", .string(line))]))
                // A reply may call tools: answer each call, then let the model continue (at most 8 rounds).
                for _ in 0..<8 {
                    var request = JSON.object([("messages", .array(messages))])
                    if let toolList { request.set("tools", toolList) }
                    sampling.apply(to: &request, chat: true)
                    let printer = StreamPrinter(color: color, reasoningToStderr: false)
                    let started = Clock.now()
                    let result: ChatResult
                    do {
                        result = try chat.complete(requestJSON: request.text) { printer.handle($0); return true }
                    } catch let error as GLMCallError {
                        printer.end()
                        // A bad turn (too long for the context, ...) is reported; the conversation goes on without it.
                        Terminal.error("glm: error: \(error)")
                        messages.removeSubrange(turnStart...)
                        break
                    }
                    printer.end()
                    let response = (try? JSON.parse(result.responseJSON)) ?? .null
                    let usage = printer.usageLine(response, started: started)
                    Terminal.err((color ? Terminal.dim : "") + "[\(usage)]" + (color ? Terminal.reset : "") + "\n")
                    guard let message = response["choices"]?[0]?["message"] else { break }
                    messages.append(message)
                    guard response["choices"]?[0]?["finish_reason"]?.stringValue == "tool_calls",
                          let calls = message["tool_calls"]?.arrayValue, !calls.isEmpty else { break }
                    for call in calls {
                        let name = call["function"]?["name"]?.stringValue ?? "?"
                        if interactive { Terminal.out("result of \(name)> ") }
                        // End of input or /exit quits here too.
                        guard let result = readLine(), !["/exit", "/quit"].contains(result.trimmingSpaces) else { return }
                        messages.append(.object([("role", .string("tool")), ("tool_call_id", call["id"] ?? .null),
                                                 ("content", .string(result))]))
                    }
                }
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
