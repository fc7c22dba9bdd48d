import ArgumentParser
import GLMClient

// The commands that need no weights: tokenize, detokenize, render, parse.

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Text to token ids with a model's tokenizer (no weights are loaded).")

    @Argument(help: "A model directory, tokenizer.json or .gguf file.")
    var model: String

    @Argument(help: "The text (default: --file, else standard input).")
    var text: String?

    @Option(help: "Read the text from this file ('-': standard input).")
    var file: String?

    @Flag(help: "Add the tokenizer's special tokens (a BOS for tokenizers that add one; GLM's adds none).")
    var addSpecialTokens = false

    @Flag(help: "Show each id with the text of its token.")
    var pieces = false

    @Flag(help: "JSON output: {\"tokens\": [...], \"count\": N, \"pieces\": [...]}.")
    var json = false

    func run() throws {
        try guarded {
            try checkLibrary()
            let input = try text ?? Files.read(file ?? "-", what: "text")
            let tokenizer: Tokenizer
            do { tokenizer = try Tokenizer(path: model) } catch { throw CommandFailure("cannot load the tokenizer '\(model)'", error) }
            let ids = try tokenizer.tokenize(input, addSpecialTokens: addSpecialTokens)
            let texts = pieces ? try ids.map { String(decoding: try tokenizer.piece($0), as: UTF8.self) } : []
            if json {
                var out = JSON.object([("tokens", .array(ids.map { JSON(Int($0)) })), ("count", JSON(ids.count))])
                if pieces { out.set("pieces", .array(texts.map { .string($0) })) }
                Terminal.out(out.text + "\n")
            } else if pieces {
                for (id, piece) in zip(ids, texts) { Terminal.out("\(id)\t\(JSON.quoted(piece))\n") }
            } else {
                Terminal.out(ids.map(String.init).joined(separator: " ") + "\n")
            }
        }
    }
}

struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize", abstract: "Token ids to text with a model's tokenizer.")

    @Argument(help: "A model directory, tokenizer.json or .gguf file.")
    var model: String

    @Argument(help: "Token ids (default: read from standard input, separated by spaces, commas or a JSON list).")
    var ids: [String] = []

    @Flag(help: "Leave out special tokens.")
    var skipSpecialTokens = false

    @Flag(help: "JSON output: {\"text\": ...}.")
    var json = false

    func run() throws {
        try guarded {
            try checkLibrary()
            var words = ids
            if words.isEmpty {
                let input = try Files.read("-", what: "token ids")
                words = input.split(whereSeparator: { " \n\t,[]".contains($0) }).map(String.init)
            }
            var tokens: [Int32] = []
            for word in words {
                guard let id = Int32(word) else {
                    throw CommandFailure("'\(word)' is not a token id", code: Exit.dataError)
                }
                tokens.append(id)
            }
            let tokenizer: Tokenizer
            do { tokenizer = try Tokenizer(path: model) } catch { throw CommandFailure("cannot load the tokenizer '\(model)'", error) }
            let text = try tokenizer.detokenize(tokens, skipSpecialTokens: skipSpecialTokens)
            Terminal.out(json ? JSON.object([("text", .string(text))]).text + "\n" : text + "\n")
        }
    }
}

struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "The prompt a chat renders to, with the model's chat template (no weights are loaded).",
        discussion: """
            Renders exactly what `glm serve`'s /v1/chat/completions and libglm's glm_chat_complete evaluate: the \
            same template, and the same message preparation (tool-call arguments given as JSON text are decoded). \
            The prompt is written as it is, without a newline after it.
            """)

    @Argument(help: "A model directory (its chat template, or GLM-4.7's built-in one if it has none, as for a chat); default: the built-in template.")
    var model: String?

    @Option(help: "Messages: a JSON list of OpenAI messages, or a request object with \"messages\" (and \"tools\", \"chat_template_kwargs\", ...). '-': standard input.")
    var messages: String

    @Option(help: "OpenAI tools (a JSON list) to declare.")
    var tools: String?

    @Option(help: "A template file or directory instead of MODEL's (.jinja, tokenizer_config.json, .gguf).")
    var template: String?

    @Option(help: "chat_template_kwargs as a JSON object, e.g. '{\"enable_thinking\": false}'.")
    var kwargs: String?

    @Flag(help: "Do not end with the assistant's generation prompt.")
    var noGenerationPrompt = false

    @Option(help: "The instant strftime_now shows (seconds since 1970).")
    var now: Int?

    @Flag(help: "JSON output: {\"prompt\": ...}.")
    var json = false

    func run() throws {
        try guarded {
            try checkLibrary()
            var request = try Files.readChatRequest(messages)
            if let tools { request.set("tools", try Files.readTools(tools)) }
            if let kwargs {
                guard let parsed = try? JSON.parse(kwargs), case .object = parsed else {
                    throw CommandFailure("--kwargs must be a JSON object", code: Exit.usage)
                }
                request.set("chat_template_kwargs", parsed)
            }
            if let now { request.set("now", JSON(now)) }
            if noGenerationPrompt { request.set("add_generation_prompt", .bool(false)) }
            let chatTemplate: ChatTemplate
            do {
                if let template {
                    chatTemplate = try ChatTemplate(path: template)
                } else if let model {
                    chatTemplate = try ChatTemplate.forChat(modelDirectory: model)
                } else {
                    chatTemplate = try ChatTemplate()
                }
            } catch {
                throw CommandFailure("cannot load the chat template of '\(template ?? model ?? "")'", error)
            }
            let prompt: String
            do { prompt = try chatTemplate.render(requestJSON: ChatRequests.renderRequest(chat: request).text) } catch {
                throw CommandFailure("cannot render the chat", error)
            }
            Terminal.out(json ? JSON.object([("prompt", .string(prompt))]).text + "\n" : prompt)
        }
    }
}

struct ParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "A GLM-4.7 model output to an OpenAI assistant message (reasoning, content, tool calls).",
        discussion: """
            The parsers of libglm's chat path (vLLM's glm45 reasoning parser and glm47 tool-call parser). The \
            output is the text generated after the prompt; by default it starts inside the reasoning, as after \
            GLM-4.7's default generation prompt "<think>".
            """)

    @Argument(help: "The model output (default: --file, else standard input).")
    var text: String?

    @Option(help: "Read the output from this file ('-': standard input).")
    var file: String?

    @Option(help: "The request's OpenAI tools (a JSON list): declares the callable names and types their arguments.")
    var tools: String?

    @Flag(help: "The prompt did not end in <think> (thinking off): the output starts as content.")
    var noThinking = false

    @Option(help: "auto (default) or none (no tool calls are returned).")
    var toolChoice: String = "auto"

    @Flag(help: "Keep calls to tools the request did not declare.")
    var keepUndeclaredTools = false

    @Option(help: "Makes the generated tool-call ids reproducible.")
    var seed: Int?

    func validate() throws {
        guard ["auto", "none"].contains(toolChoice) else { throw ValidationError("--tool-choice must be auto or none") }
    }

    func run() throws {
        try guarded {
            try checkLibrary()
            let output = try text ?? Files.read(file ?? "-", what: "model output")
            var options = JSON.object([("thinking", .bool(!noThinking)), ("tool_choice", .string(toolChoice)),
                                       ("keep_undeclared_tools", .bool(keepUndeclaredTools))])
            if let tools { options.set("tools", try Files.readTools(tools)) }
            if let seed { options.set("tool_call_id_seed", JSON(seed)) }
            let message: String
            do { message = try LibGLM.parseOutput(output, optionsJSON: options.text) } catch {
                throw CommandFailure("cannot parse the output", error)
            }
            Terminal.out(message + "\n")
        }
    }
}
