import GLMJSON
import GLMParsers
import GLMSupport
import Glibc

/// Parser throughput: a ~32 KB GLM-4.7 output (reasoning, content, several tool calls with long string and typed
/// arguments) parsed whole (`parseOutput`) and streamed in token-sized chunks of 1-6 characters
/// (`StreamingOutputParser`). Prints MB/s of model output for both.
///
/// Arguments: `[seconds] [batch|streaming]`: the minimum time spent per mode (default 2), and one mode only.
func parserBenchmark(arguments: [String]) throws {
    let seconds = arguments.first.flatMap { Double($0) } ?? 2
    let modes = arguments.count > 1 ? [arguments[1]] : ["batch", "streaming"]
    let tools = try JSONValue.parse(#"""
        [{"type": "function", "function": {"name": "write_file", "parameters": {"type": "object", "properties":
          {"path": {"type": "string"}, "content": {"type": "string"}, "mode": {"type": "integer"},
           "overwrite": {"type": "boolean"}}}}},
         {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties":
          {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
        """#)
    let options = OutputParserOptions(tools: tools, toolCallIDSeed: 1)
    let output = benchmarkOutput(targetBytes: 32 * 1024)
    let chunks = tokenSizedChunks(output)
    let megabytes = Double(output.utf8.count) / 1_000_000

    // Both modes must agree before their speed means anything.
    let batch = try parseOutput(output, options: options)
    let streamer = try StreamingOutputParser(options: options)
    for chunk in chunks { _ = streamer.feed(chunk) }
    guard streamer.finish().output == batch, batch.toolCalls.count == 6 else {
        throw GLMError(.internal, "parser benchmark: streaming and batch results differ")
    }

    print("parser benchmark: \(output.utf8.count) bytes of output, \(chunks.count) chunks, \(batch.toolCalls.count) tool calls")
    if modes.contains("batch") {
        let batchRate = try measure(seconds: seconds, megabytes: megabytes) {
            _ = try parseOutput(output, options: options)
        }
        print("  batch      \(formatRate(batchRate)) MB/s")
    }
    guard modes.contains("streaming") else { return }
    let streamRate = try measure(seconds: seconds, megabytes: megabytes) {
        let parser = try StreamingOutputParser(options: options)
        var events = 0
        for chunk in chunks { events += parser.feed(chunk).count }
        events += parser.finish().events.count
        if events == 0 { throw GLMError(.internal, "parser benchmark: no events") }
    }
    print("  streaming  \(formatRate(streamRate)) MB/s")
}

/// Runs `body` until `seconds` have passed; returns megabytes per second.
private func measure(seconds: Double, megabytes: Double, _ body: () throws -> Void) throws -> Double {
    try body()  // warm-up
    var runs = 0
    let start = monotonicSeconds()
    var elapsed = 0.0
    repeat {
        try body()
        runs += 1
        elapsed = monotonicSeconds() - start
    } while elapsed < seconds
    return Double(runs) * megabytes / elapsed
}

private func formatRate(_ rate: Double) -> String {
    let tenths = Int((rate * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

/// Reasoning, then content, then six calls whose string arguments hold code, markup, quotes and newlines,
/// grown to about `targetBytes`.
private func benchmarkOutput(targetBytes: Int) -> String {
    let sentence = "The user wants the report files updated; I should check each path, keep the <header> intact, "
        + "and quote \"values\" exactly. 東京 and café stay as they are.\n"
    let code = "func render(_ items: [Item]) -> String {\n    var html = \"<ul class=\\\"list\\\">\"\n"
        + "    for item in items where item.count > 0 { html += \"<li>\\(item.name) & \\(item.count)</li>\" }\n"
        + "    return html + \"</ul>\"\n}\n"
    let reasoning = repeated(sentence, toBytes: targetBytes / 4) + "</think>"
    var calls = ""
    for i in 0..<5 {
        calls += "<tool_call>write_file<arg_key>path</arg_key><arg_value>src/file\(i).swift</arg_value>"
        calls += "<arg_key>content</arg_key><arg_value>" + repeated(code, toBytes: targetBytes / 8) + "</arg_value>"
        calls += "<arg_key>mode</arg_key><arg_value>420</arg_value><arg_key>overwrite</arg_key><arg_value>true</arg_value></tool_call>"
    }
    calls += "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value>"
    calls += "<arg_key>days</arg_key><arg_value>3</arg_value></tool_call>"
    let contentBytes = targetBytes - reasoning.utf8.count - calls.utf8.count
    return reasoning + repeated("Here is the plan, step by step. ", toBytes: contentBytes) + calls
}

private func repeated(_ unit: String, toBytes bytes: Int) -> String {
    var text = ""
    while text.utf8.count + unit.utf8.count <= bytes { text += unit }
    return text
}

/// Chunks of 1-6 Unicode scalars, about a BPE token each, from a fixed generator.
private func tokenSizedChunks(_ text: String) -> [String] {
    var state: UInt64 = 12345
    let scalars = Array(text.unicodeScalars)
    var chunks: [String] = []
    var i = 0
    while i < scalars.count {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let n = min(1 + Int(state >> 61) % 6, scalars.count - i)
        chunks.append(String(String.UnicodeScalarView(scalars[i..<(i + n)])))
        i += n
    }
    return chunks
}
