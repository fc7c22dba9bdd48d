import Glibc
import GLMFormats
import GLMGeneration
import GLMJSON
import GLMParsers
import GLMSupport
import GLMTemplate
import GLMTokenizer

/// The fuzz targets, one per parser of outside input. Input layouts that carry more than one part separate the
/// parts with 0xFE / 0xFF: bytes that never occur in UTF-8, so text parts stay free-form.
enum Targets {
    /// Text every loaded tokenizer encodes: letters, digits, punctuation, whitespace runs, a chat marker and
    /// multi-byte scalars.
    static let sampleText = "Hello, world! It's 2024: 12345 items.\n\n\tcode(x) { return x+1; }  <|user|> héllo 日本語 🙂"

    // MARK: files

    /// A `.safetensors` file: header validation, then every tensor's first and last byte, which must be inside
    /// the map and agree with its dtype and shape.
    static func safetensors(_ data: Bytes) {
        guard let file = try? SafetensorsFile(path: InputFile.write(data)) else { return }
        var sum: UInt8 = 0
        for name in file.tensorNames {
            guard let tensor = file.tensors[name] else {
                require(false, "tensor '\(name)' listed but not stored")
                return
            }
            let elements = tensor.shape.reduce(1, *)
            require(tensor.bytes.count == elements * tensor.dtype.byteSize, "'\(name)': byte count vs shape")
            if let first = tensor.bytes.first, let last = tensor.bytes.last { sum &+= first &+ last }
        }
        consume(sum)
    }

    /// A GGUF file: header, metadata and tensor infos; every tensor's data range; then its vocabulary as a
    /// tokenizer (BPE, SPM or WPM), which must encode and decode.
    static func gguf(_ data: Bytes) {
        guard let file = try? GGUFFile(path: InputFile.write(data)) else { return }
        var sum: UInt8 = 0
        for key in file.keys { consume(file.value(for: key)) }
        for tensor in file.tensors {
            if let bytes = try? file.data(of: tensor), let first = bytes.first, let last = bytes.last {
                sum &+= first &+ last
            }
        }
        consume(sum)
        guard let tokenizer = try? Tokenizer.load(gguf: file) else { return }
        exercise(tokenizer)
    }

    /// `config.json` and `generation_config.json` readers, and the JSON parser under them: whatever parses must
    /// write back (Python `json.dumps`) to text that parses to the same value.
    static func config(_ data: Bytes) {
        let path = InputFile.write(data)
        consume(try? ModelConfig(contentsOf: path))
        consume(try? GenerationConfig(contentsOf: path))
        guard let value = try? JSONValue.parse(bytes: data) else { return }
        let written = JSONWriter.python.string(value)
        guard let reparsed = try? JSONValue.parse(written) else {
            require(false, "json.dumps output does not parse: \(written.prefix(200))")
            return
        }
        require(JSONWriter.python.string(reparsed) == written, "JSON write/parse round trip changed \(written.prefix(200))")
    }

    /// An HF `tokenizer.json` (streaming scanner, normalizers, pre-tokenizer regexes, added tokens), which must
    /// then encode and decode.
    static func tokenizerJSON(_ data: Bytes) {
        guard let tokenizer = try? Tokenizer.load(tokenizerJSON: InputFile.write(data)) else { return }
        exercise(tokenizer)
    }

    private static func exercise(_ tokenizer: Tokenizer) {
        // A hostile pre-tokenizer may exhaust the per-call step budget: an error, which is a fine outcome.
        guard let ids = try? tokenizer.encode(sampleText) else { return }
        for id in ids { require(id >= 0 && Int(id) < tokenizer.vocabSize, "encode produced id \(id) of \(tokenizer.vocabSize)") }
        consume(try? tokenizer.decode(ids))
        consume(try? tokenizer.decode(ids, skipSpecialTokens: true))
        // Ids around the vocabulary's edges, including ones in gaps and outside it.
        let edges: [Int32] = [0, 1, Int32(clamping: tokenizer.vocabSize - 1), Int32(clamping: tokenizer.vocabSize), -1]
        for id in edges { consume(try? tokenizer.decode([id])) }
    }

    // MARK: text through the GLM tokenizer

    nonisolated(unsafe) static var fixtureTokenizer: Tokenizer?

    static func loadFixtureTokenizer() {
        do {
            fixtureTokenizer = try Tokenizer.load(tokenizerJSON: Fixtures.root + "/tokenizers/glm-tiny/tokenizer.json")
        } catch {
            fatalSetUp("glm-tiny tokenizer: \(error.message)")
        }
    }

    /// User text through the GLM-4 tokenizer (byte-level BPE, no normalizer): decoding the ids gives the text
    /// back exactly, and the streaming decoder, fed one id at a time, gives the same text.
    static func tokenize(_ data: Bytes) {
        guard let tokenizer = fixtureTokenizer else { return }
        let text = data.text
        // Arbitrary text may exhaust the per-call step budget (an error, not a crash): nothing to round-trip then.
        guard let ids = try? tokenizer.encode(text, addSpecialTokens: false) else { return }
        guard let decoded = try? tokenizer.decode(ids) else {
            require(false, "decode failed on ids from encode")
            return
        }
        require(decoded == text, "decode(encode(text)) != text for \(Array(text.utf8).prefix(64))")
        var streaming = StreamingDecoder()
        var streamed = ""
        for id in ids {
            guard let piece = try? streaming.append(id, from: tokenizer) else {
                require(false, "streaming decoder rejected id \(id)")
                return
            }
            streamed += piece
        }
        streamed += streaming.finish()
        require(streamed == decoded, "streaming decode != decode for \(Array(text.utf8).prefix(64))")
    }

    // MARK: templates

    /// Limits tighter than the defaults so that slow templates end quickly; what the fuzzer looks for is a
    /// template whose work escapes every limit (a hang) or that crashes.
    static let fuzzLimits: RenderLimits = {
        var limits = RenderLimits()
        limits.maxOutputBytes = 1 << 20
        limits.maxIterations = 100_000
        return limits
    }()

    static let defaultMessages: JSONValue = parseFixed("""
        [{"role": "system", "content": "Be brief."},
         {"role": "user", "content": "What's the weather in Paris?"},
         {"role": "assistant", "content": "", "reasoning_content": "Use the tool.",
          "tool_calls": [{"id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp\\": 21}"},
         {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}]
        """)
    static let defaultTools: JSONValue = parseFixed("""
        [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                         "required": ["city"]}}}]
        """)

    /// Jinja source, optionally followed by 0xFF and a JSON object of variables. With variables the template
    /// renders them as they are; without, it renders as a chat template (transformers' preprocessing) over a
    /// conversation with a tool call.
    static func jinja(_ data: Bytes) {
        let (sourceBytes, variableBytes) = data.split(at: 0xFF)
        let source = sourceBytes.text
        if let variableBytes {
            guard let template = try? JinjaTemplate(source: source, limits: fuzzLimits) else { return }
            let variables = (try? JSONValue.parse(variableBytes.text))?.objectValue ?? JSONObject()
            consume(try? template.render(variables, now: 1_721_730_030))
        } else {
            guard let template = try? ChatTemplate(source: source, limits: fuzzLimits) else { return }
            consume(try? template.render(messages: defaultMessages, tools: defaultTools, addGenerationPrompt: true,
                                         now: 1_721_730_030))
        }
    }

    // MARK: chat requests

    nonisolated(unsafe) static var chatTemplate: ChatTemplate?

    static func loadChatFixtures() {
        loadFixtureTokenizer()
        do {
            chatTemplate = try ChatTemplate.glm47()
        } catch {
            fatalSetUp("GLM-4.7 template: \(error.message)")
        }
    }

    /// An OpenAI chat request as the C API receives it (JSON text), through what `ChatSession.complete` does
    /// before the model runs: request checks, sampling validation, the GLM-4.7 template, the tokenizer, and the
    /// output parser's options from the request's tools.
    static func chatRequest(_ data: Bytes) {
        guard let template = chatTemplate, let tokenizer = fixtureTokenizer,
              let json = try? JSONValue.parse(data.text, maxDepth: 128),
              let request = try? ChatRequest(json: json, defaults: SamplingParameters()) else { return }
        guard (try? request.sampling.validate(vocabularySize: tokenizer.vocabSize)) != nil else { return }
        let tools = request.tools.map { JSONValue.array($0) }
        guard let prompt = try? template.render(messages: .array(request.messages), tools: tools,
                                                addGenerationPrompt: true, variables: request.templateVariables,
                                                now: request.now) else { return }
        consume(try? tokenizer.encode(prompt, addSpecialTokens: false))
        let options = OutputParserOptions(tools: tools, thinking: prompt.hasSuffix("<think>"),
                                          parseToolCalls: request.toolChoice == .auto, toolCallIDSeed: 7)
        consume(try? StreamingOutputParser(options: options))
    }

    // MARK: model output

    /// Model output through the streaming parser. Layout: one flag byte (bit 0 thinking, bit 1 keep undeclared
    /// tools, bit 2 tool_choice "none"), the request's `tools` JSON up to a 0xFE byte, then the output in chunks
    /// separated by 0xFF. However the output is cut, the streamed message must equal the batch parse and the
    /// events must add up to it.
    static func streamParser(_ data: Bytes) {
        guard let flags = data.first else { return }
        let (toolBytes, outputBytes) = Bytes(rebasing: data.dropFirst()).split(at: 0xFE)
        let tools = (try? JSONValue.parse(toolBytes.text)).flatMap { $0.isNull ? nil : $0 }
        let options = OutputParserOptions(tools: tools, thinking: flags & 1 != 0, keepUndeclaredTools: flags & 2 != 0,
                                          parseToolCalls: flags & 4 == 0, toolCallIDSeed: 42)
        var chunks: [String] = []
        var rest = outputBytes ?? Bytes(start: nil, count: 0)
        while true {
            let (chunk, next) = rest.split(at: 0xFF)
            chunks.append(chunk.text)
            guard let next else { break }
            rest = next
        }
        let text = chunks.joined()
        guard let batch = try? parseOutput(text, options: options),
              let parser = try? StreamingOutputParser(options: options) else { return }
        var events: [ParserEvent] = []
        for chunk in chunks { events += parser.feed(chunk) }
        let (last, output) = parser.finish()
        events += last
        require(output == batch, "streamed message \(output) != batch \(batch)")

        var reasoning = ""
        var content = ""
        var contentBeforeFirstCall: String?
        var names: [String] = []
        var ids: [String] = []
        var arguments: [String] = []
        for event in events {
            switch event {
            case .reasoning(let piece):
                require(!piece.isEmpty, "empty reasoning event")
                reasoning += piece
            case .content(let piece):
                require(!piece.isEmpty, "empty content event")
                content += piece
            case .toolCallStart(let index, let id, let name):
                require(index == names.count, "call index \(index) out of order")
                if contentBeforeFirstCall == nil { contentBeforeFirstCall = content }
                names.append(name)
                ids.append(id)
                arguments.append("")
            case .toolCallArguments(let index, let delta):
                require(index == names.count - 1 && index >= 0, "arguments for call \(index), not the open one")
                arguments[index] += delta
            }
        }
        require((reasoning.isEmpty ? nil : reasoning) == batch.reasoning, "streamed reasoning != batch")
        let expectedContent = messageContent(streamed: content, beforeFirstCall: contentBeforeFirstCall)
        require((expectedContent.isEmpty ? nil : expectedContent) == batch.content,
                "streamed content \(content.debugDescription) != batch \(String(describing: batch.content))")
        require(names == batch.toolCalls.map(\.name), "call names")
        require(ids == batch.toolCalls.map(\.id), "call ids")
        require(arguments == batch.toolCalls.map(\.arguments), "streamed arguments \(arguments) != batch")
        for text in arguments {
            require((try? JSONValue.parse(text))?.objectValue != nil, "arguments are not a JSON object: \(text)")
        }
    }

    /// The message content that goes with streamed content (vLLM 0.33, as Tests/GLMParsersTests checks): the
    /// text before the first call, stripped, while only whitespace follows the first call; else everything.
    private static func messageContent(streamed: String, beforeFirstCall: String?) -> String {
        guard let before = beforeFirstCall else { return streamed }
        let after = String(String.UnicodeScalarView(streamed.unicodeScalars.dropFirst(before.unicodeScalars.count)))
        return pythonStrip(after).isEmpty ? pythonStrip(before) : streamed
    }

    /// Python's `str.strip()`.
    private static func pythonStrip(_ s: String) -> String {
        func isSpace(_ v: UInt32) -> Bool {
            switch v {
            case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
                 0x3000: true
            default: false
            }
        }
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0.value) }),
              let last = scalars.lastIndex(where: { !isSpace($0.value) }) else { return "" }
        return String(scalars[first...last])
    }

    // MARK: helpers

    private static func parseFixed(_ text: String) -> JSONValue {
        do {
            return try JSONValue.parse(text)
        } catch {
            fatalSetUp("built-in JSON: \(error.message)")
        }
    }

    private static func fatalSetUp(_ what: String) -> Never {
        fputs("glm-fuzz: cannot set up: \(what)\n", stderr)
        exit(1)
    }
}
