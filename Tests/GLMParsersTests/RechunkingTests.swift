import GLMJSON
import GLMParsers
import Testing

/// Streaming must not depend on where chunks are cut: whatever the chunking, the final message equals the batch
/// parse and the events add up to it (reasoning and arguments exactly, content before its final strip).
/// Checks one chunking of `text`: the final message equals the batch parse, and the events add up to it
/// (reasoning and arguments exactly; content as vLLM's own two answers relate, see `expectedMessageContent`).
/// Returns the raw concatenated content so callers can compare chunkings.
@discardableResult
func checkStream(_ chunks: [String], text: String, options: OutputParserOptions, _ label: String) throws -> String {
    let batch = try parseOutput(text, options: options)
    let (events, _, output) = try stream(chunks, options: options)
    #expect(output == batch, "\(label): final message differs from the batch parse")

    var reasoning = "", content = ""
    var contentBeforeFirstCall: String?
    var starts: [(id: String, name: String)] = []
    var arguments: [String] = []
    for event in events {
        switch event {
        case .reasoning(let piece):
            #expect(!piece.isEmpty, "\(label): empty reasoning event")
            reasoning += piece
        case .content(let piece):
            #expect(!piece.isEmpty, "\(label): empty content event")
            content += piece
        case .toolCallStart(let index, let id, let name):
            #expect(index == starts.count, "\(label): call index out of order")
            if contentBeforeFirstCall == nil { contentBeforeFirstCall = content }
            starts.append((id, name))
            arguments.append("")
        case .toolCallArguments(let index, let delta):
            #expect(index == starts.count - 1, "\(label): arguments for a call that is not the open one")
            if index >= 0 && index < arguments.count { arguments[index] += delta }
        }
    }
    #expect((reasoning.isEmpty ? nil : reasoning) == batch.reasoning, "\(label): reasoning")
    let expected = expectedMessageContent(streamed: content, beforeFirstCall: contentBeforeFirstCall)
    #expect((expected.isEmpty ? nil : expected) == batch.content, "\(label): content")
    #expect(starts.map(\.name) == batch.toolCalls.map(\.name), "\(label): call names")
    #expect(starts.map(\.id) == batch.toolCalls.map(\.id), "\(label): call ids")
    #expect(arguments == batch.toolCalls.map(\.arguments), "\(label): arguments")
    for args in arguments { #expect((try? JSONValue.parse(args))?.objectValue != nil, "\(label): arguments not a JSON object: \(args)") }
    return content
}

/// The message content that goes with streamed content: vLLM 0.33's batch answer (the text before the first
/// call, stripped) while only whitespace follows the first call, its streamed answer (everything, unstripped)
/// once text does (the batch would lose that text). Without calls, everything.
func expectedMessageContent(streamed: String, beforeFirstCall: String?) -> String {
    guard let before = beforeFirstCall else { return streamed }
    let after = String(String.UnicodeScalarView(streamed.unicodeScalars.dropFirst(before.unicodeScalars.count)))
    return pythonStrip(after).isEmpty ? pythonStrip(before) : streamed
}

/// `text` cut where vLLM's detokenizer would cut it: every tag alone, the text between in 4-scalar pieces (the
/// shape of the recorded `stream_chunks`).
func tokenLikeChunks(_ text: String) -> [String] {
    let tags = OutputTagText.all
    var chunks: [String] = []
    var rest = Substring(text)
    var plain = ""
    func flushPlain() {
        chunks += chunked(plain) { 4 }
        plain = ""
    }
    while let first = rest.first {
        if let tag = tags.first(where: { rest.hasPrefix($0) }) {
            flushPlain()
            chunks.append(tag)
            rest = rest.dropFirst(tag.count)
        } else {
            plain.append(first)
            rest = rest.dropFirst()
        }
    }
    flushPlain()
    return chunks
}

/// The tag spellings, written out here so the tests do not borrow the parser's own table.
enum OutputTagText {
    static let all = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>",
                      "</arg_value>"]
}

/// Runs `text` through every chunking the recorded cases get: one chunk, one scalar per chunk, 40 random
/// chunkings, and `tokenChunks` each cut once more at a random point (inside tags among others). Returns the
/// batch message.
@discardableResult
func checkEveryChunking(_ text: String, options: OutputParserOptions, tokenChunks: [String],
                        _ label: String = "") throws -> ParsedOutput {
    let reference = try checkStream([text], text: text, options: options, "\(label) one chunk")
    #expect(try checkStream(chunked(text) { 1 }, text: text, options: options, "\(label) 1-scalar chunks") == reference)
    for seed in 0..<40 as Range<UInt64> {
        var rng = SeededGenerator(state: seed)
        let chunks = chunked(text) { Int.random(in: 1...12, using: &rng) }
        #expect(try checkStream(chunks, text: text, options: options, "\(label) random chunks, seed \(seed)") == reference)
    }
    var rng = SeededGenerator(state: 99)
    let resplit = tokenChunks.flatMap { chunk -> [String] in
        let scalars = Array(chunk.unicodeScalars)
        guard scalars.count > 1 else { return [chunk] }
        let cut = Int.random(in: 1..<scalars.count, using: &rng)
        return [String(String.UnicodeScalarView(scalars[..<cut])), String(String.UnicodeScalarView(scalars[cut...]))]
    }
    #expect(try checkStream(resplit, text: text, options: options, "\(label) re-split token chunks") == reference)
    #expect(try checkStream(tokenChunks, text: text, options: options, "\(label) token chunks") == reference)
    return try parseOutput(text, options: options)
}

/// Streaming must not depend on where chunks are cut: whatever the chunking, the final message equals the batch
/// parse and the events add up to it.
@Suite struct RechunkingTests {
    @Test(arguments: ParserCase.all)
    func everyCaseUnderManyChunkings(_ testCase: ParserCase) throws {
        try checkEveryChunking(testCase.modelOutput, options: testCase.options, tokenChunks: testCase.streamChunks)
    }

    /// The typing cases too: a value's JSON must not depend on where the chunks cut it.
    @Test(arguments: CoercionCase.all)
    func everyCoercionCaseUnderManyChunkings(_ testCase: CoercionCase) throws {
        let expected = try #require(testCase.record["arguments"]?.stringValue)
        let batch = try checkEveryChunking(testCase.modelOutput, options: testCase.options,
                                           tokenChunks: tokenLikeChunks(testCase.modelOutput))
        #expect(batch.toolCalls.map(\.arguments) == [expected])
    }

    /// Random documents built from tags, tag fragments, names, values and multi-byte text, under random options.
    @Test func randomDocumentsUnderRandomChunkings() throws {
        let pieces = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>",
                      "</arg_value>", "get_weather", "do_types", "unknown", "city", "i", "b", "o", "u", " ", "\n", "  ",
                      "Paris", "東京", "é", "😀", "<", "</", "<tool", "</arg_v", "<arg_", "<thin", ">", "42", "3.5",
                      "true", "null", "{\"k\": [1, 2]}", "[1, \"x\"]", "\"q\"", "\\", "\t", "\u{3000}", "x<y"]
        let tools = try JSONValue.parse(#"""
            [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties":
              {"city": {"type": "string"}, "i": {"type": "integer"}}}}},
             {"type": "function", "function": {"name": "do_types", "parameters": {"type": "object", "properties":
              {"i": {"type": "integer"}, "b": {"type": "boolean"}, "o": {"type": "object"}, "u": {"type": ["integer", "string"]}}}}}]
            """#)
        var rng = SeededGenerator(state: 2026)
        var callsSeen = 0, reasoningSeen = 0, contentSeen = 0
        for document in 0..<300 {
            let text = (0..<Int.random(in: 0...60, using: &rng)).map { _ in pieces.randomElement(using: &rng) ?? "" }.joined()
            let options = OutputParserOptions(tools: Bool.random(using: &rng) ? tools : nil,
                                              thinking: Bool.random(using: &rng),
                                              keepUndeclaredTools: Bool.random(using: &rng),
                                              parseToolCalls: Int.random(in: 0..<5, using: &rng) != 0,
                                              toolCallIDSeed: 1)
            let reference = try checkStream([text], text: text, options: options, "document \(document), one chunk")
            let batch = try parseOutput(text, options: options)
            callsSeen += batch.toolCalls.count
            reasoningSeen += batch.reasoning == nil ? 0 : 1
            contentSeen += batch.content == nil ? 0 : 1
            for round in 0..<4 {
                let chunks = chunked(text) { Int.random(in: 1...(round == 0 ? 1 : 9), using: &rng) }
                #expect(try checkStream(chunks, text: text, options: options, "document \(document) round \(round)") == reference)
            }
        }
        // The generator must actually exercise calls, reasoning and content.
        #expect(callsSeen > 50 && reasoningSeen > 50 && contentSeen > 50, "\(callsSeen) \(reasoningSeen) \(contentSeen)")
    }
}

/// Python's `str.strip()` (the parser's own is internal).
func pythonStrip(_ s: String) -> String {
    func isSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }
    let scalars = s.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isSpace($0.value) }),
          let last = scalars.lastIndex(where: { !isSpace($0.value) }) else { return "" }
    return String(scalars[first...last])
}
