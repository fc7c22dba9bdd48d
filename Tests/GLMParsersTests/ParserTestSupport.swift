import GLMJSON
import GLMParsers
import GLMSupport
import Glibc
import Testing

/// Tests/Fixtures/parsers, found from this file's path.
let parserFixturesDirectory: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)  // GLMParsersTests/<file>
    return parts.joined(separator: "/") + "/Fixtures/parsers"
}()

func readParserFixture(_ name: String) throws -> String {
    let path = parserFixturesDirectory + "/" + name
    guard let file = fopen(path, "rb") else { throw GLMError.io("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var block = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&block, 1, block.count, file)
        if n <= 0 { break }
        bytes.append(contentsOf: block[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The JSON lines of a fixture file.
func readJSONLines(_ name: String) throws -> [JSONValue] {
    try readParserFixture(name).split(separator: "\n").map { try JSONValue.parse(String($0)) }
}

/// One recorded vLLM 0.33 case from parser_cases.jsonl.
struct ParserCase: CustomTestStringConvertible {
    let record: JSONValue
    var name: String { record["name"]?.stringValue ?? "?" }
    var modelOutput: String { record["model_output"]?.stringValue ?? "" }
    var streamChunks: [String] { record["stream_chunks"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    var testDescription: String { name }

    /// The request as the parser sees it: the case's tools, thinking when the prompt ended in `<think>`.
    var options: OutputParserOptions {
        let tools = record["tools"].flatMap { $0.isNull ? nil : $0 }
        let thinking = record["prompt_tail"]?.stringValue?.hasSuffix("<think>") ?? true
        return OutputParserOptions(tools: tools, thinking: thinking, toolCallIDSeed: 7)
    }

    static let all: [ParserCase] = (try? readJSONLines("parser_cases.jsonl").map(ParserCase.init)) ?? []
}

/// A parsed message in the fixture's shape: `{"reasoning", "content", "tool_calls": [{"name", "arguments": {...}}]}`,
/// with the arguments decoded by GLMJSON (Python `json.loads` semantics).
func fixtureShape(_ output: ParsedOutput) throws -> JSONValue {
    let calls: [JSONValue] = try output.toolCalls.map { call in
        .object(JSONObject([("name", .string(call.name)), ("arguments", try JSONValue.parse(call.arguments))]))
    }
    return .object(JSONObject([
        ("reasoning", output.reasoning.map { .string($0) } ?? .null),
        ("content", output.content.map { .string($0) } ?? .null),
        ("tool_calls", .array(calls)),
    ]))
}

/// What the events add up to, in the same shape (content not stripped: that is what a client concatenates).
func concatenatedShape(_ events: [ParserEvent]) throws -> JSONValue {
    var reasoning = "", content = ""
    var names: [String] = [], arguments: [String] = []
    for event in events {
        switch event {
        case .reasoning(let text): reasoning += text
        case .content(let text): content += text
        case .toolCallStart(_, _, let name): names.append(name); arguments.append("")
        case .toolCallArguments(let index, let delta): arguments[index] += delta
        }
    }
    let calls: [JSONValue] = try zip(names, arguments).map { name, args in
        .object(JSONObject([("name", .string(name)), ("arguments", try JSONValue.parse(args))]))
    }
    return .object(JSONObject([
        ("reasoning", reasoning.isEmpty ? .null : .string(reasoning)),
        ("content", content.isEmpty ? .null : .string(content)),
        ("tool_calls", .array(calls)),
    ]))
}

/// One chunk's events as vLLM's DeltaMessage (the fixture's `expected_stream_deltas` shape): text of one kind
/// joined, tool-call pieces merged per index (`_coalesce_tool_call_deltas`); nil when the chunk produced nothing.
func vllmDelta(_ events: [ParserEvent]) -> JSONValue? {
    var reasoning = "", content = ""
    var order: [Int] = []
    var names: [Int: String] = [:], arguments: [Int: String] = [:]
    for event in events {
        switch event {
        case .reasoning(let text): reasoning += text
        case .content(let text): content += text
        case .toolCallStart(let index, _, let name):
            if !order.contains(index) { order.append(index) }
            names[index] = name
        case .toolCallArguments(let index, let delta):
            if !order.contains(index) { order.append(index) }
            arguments[index, default: ""] += delta
        }
    }
    var fields: [(String, JSONValue)] = []
    if !reasoning.isEmpty { fields.append(("reasoning", .string(reasoning))) }
    if !content.isEmpty { fields.append(("content", .string(content))) }
    if !order.isEmpty {
        fields.append(("tool_calls", .array(order.map { index in
            var call: [(String, JSONValue)] = [("index", JSONValue(index))]
            if let name = names[index] { call.append(("name", .string(name))) }
            call.append(("arguments", arguments[index].map { .string($0) } ?? .null))
            return .object(JSONObject(call))
        })))
    }
    return fields.isEmpty ? nil : .object(JSONObject(fields))
}

/// Streams `chunks`; returns every event, the per-chunk vLLM deltas (finish's events joined to the last
/// chunk's, as vLLM sends the last token with `finished=True`), and the final message.
func stream(_ chunks: [String], options: OutputParserOptions) throws
    -> (events: [ParserEvent], deltas: [JSONValue], output: ParsedOutput) {
    let parser = try StreamingOutputParser(options: options)
    var all: [ParserEvent] = []
    var perChunk: [[ParserEvent]] = []
    for chunk in chunks {
        let events = parser.feed(chunk)
        all += events
        perChunk.append(events)
    }
    let (finalEvents, output) = parser.finish()
    all += finalEvents
    if perChunk.isEmpty { perChunk.append([]) }
    perChunk[perChunk.count - 1] += finalEvents
    return (all, perChunk.compactMap(vllmDelta), output)
}

/// A small deterministic generator for re-chunking (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `text` cut into chunks of `sizes()` Unicode scalars each.
func chunked(_ text: String, sizes: () -> Int) -> [String] {
    let scalars = Array(text.unicodeScalars)
    var chunks: [String] = []
    var i = 0
    while i < scalars.count {
        let n = min(max(1, sizes()), scalars.count - i)
        var chunk = String.UnicodeScalarView()
        chunk.append(contentsOf: scalars[i..<(i + n)])
        chunks.append(String(chunk))
        i += n
    }
    return chunks
}
