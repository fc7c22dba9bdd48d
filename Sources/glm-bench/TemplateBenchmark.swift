import GLMJSON
import GLMSupport
import GLMTemplate
#if canImport(Glibc)
import Glibc
#endif

/// `glm-bench template [--input FILE] [--iterations N] [--output FILE]`: renders a long conversation with the
/// built-in GLM-4.7 chat template and prints one JSON line of timings (microseconds).
///
/// FILE holds `{"messages": [...], "tools": [...], "add_generation_prompt": bool}`; tools/bench_template.py
/// writes it, runs jinja2 on the same input in the same run, and prints the ratios. Without --input a
/// conversation of 100 messages with 20 tools is built here (the same shape the Python tool builds).
/// --output writes the rendered prompt so the caller can check it matches jinja2 byte for byte.
func templateBenchmark(arguments: [String]) throws {
    var inputPath: String? = nil
    var outputPath: String? = nil
    var iterations = 200
    var i = 0
    while i < arguments.count {
        let flag = arguments[i]
        let value = i + 1 < arguments.count ? arguments[i + 1] : nil
        switch flag {
        case "--input": inputPath = value; i += 2
        case "--output": outputPath = value; i += 2
        case "--iterations":
            guard let v = value.flatMap({ Int($0) }), v > 0 else { throw GLMError.invalidArgument("--iterations needs a positive integer") }
            iterations = v
            i += 2
        default:
            throw GLMError.invalidArgument("glm-bench template: unknown argument '\(flag)' (use --input FILE, --iterations N, --output FILE)")
        }
    }

    let input: JSONValue
    if let inputPath {
        input = try JSONValue.parse(try FileSystem.readText(inputPath))
    } else {
        input = syntheticConversation(messageCount: 100, toolCount: 20)
    }
    guard let messages = input["messages"], let tools = input["tools"] else {
        throw GLMError.invalidArgument("benchmark input needs \"messages\" and \"tools\"")
    }
    let addGenerationPrompt = input["add_generation_prompt"]?.boolValue ?? true

    var template = try ChatTemplate.glm47()
    var parseSamples: [Double] = []
    for _ in 0..<min(iterations, 50) {
        let start = monotonicSeconds() * 1e6
        template = try ChatTemplate.glm47()
        parseSamples.append(monotonicSeconds() * 1e6 - start)
    }
    parseSamples.sort()
    let parseMicroseconds = parseSamples[parseSamples.count / 2]

    var output = try template.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt)
    var samples: [Double] = []
    samples.reserveCapacity(iterations)
    for _ in 0..<iterations {
        let start = monotonicSeconds() * 1e6
        output = try template.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt)
        samples.append(monotonicSeconds() * 1e6 - start)
    }
    samples.sort()
    let median = samples[samples.count / 2]
    let mean = samples.reduce(0, +) / Double(samples.count)

    if let outputPath {
        guard let file = fopen(outputPath, "w") else { throw GLMError.io("cannot write '\(outputPath)'") }
        _ = output.withCString { fputs($0, file) }
        fclose(file)
    }
    var report = JSONObject()
    report["benchmark"] = .string("template_render_glm47")
    report["messages"] = JSONValue(messages.arrayValue?.count ?? 0)
    report["tools"] = JSONValue(tools.arrayValue?.count ?? 0)
    report["output_bytes"] = JSONValue(output.utf8.count)
    report["iterations"] = JSONValue(iterations)
    report["parse_us_median"] = .double(parseMicroseconds)
    report["render_us_median"] = .double(median)
    report["render_us_mean"] = .double(mean)
    report["render_us_min"] = .double(samples.first ?? 0)
    print(JSONValue.object(report).pythonJSON)
}

/// A tool loop conversation: system, then rounds of user / assistant (reasoning + tool call) / tool result /
/// assistant answer, with `toolCount` tools whose schemas have a few typed parameters each.
private func syntheticConversation(messageCount: Int, toolCount: Int) -> JSONValue {
    func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
    var tools: [JSONValue] = []
    for t in 0..<toolCount {
        let parameters = object([
            ("type", .string("object")),
            ("properties", object([
                ("query", object([("type", .string("string")), ("description", .string("What to look up for tool \(t)"))])),
                ("limit", object([("type", .string("integer")), ("minimum", JSONValue(1)), ("default", JSONValue(10))])),
                ("filters", object([("type", .string("array")), ("items", object([("type", .string("string"))]))])),
                ("strict", object([("type", .string("boolean"))])),
            ])),
            ("required", .array([.string("query")])),
        ])
        tools.append(object([("type", .string("function")), ("function", object([
            ("name", .string("tool_\(t)")), ("description", .string("Tool number \(t): searches the data set \(t) and returns JSON.")),
            ("parameters", parameters),
        ]))]))
    }
    var messages: [JSONValue] = [object([("role", .string("system")), ("content", .string("You are a careful assistant. Use the tools when they help."))])]
    var round = 0
    while messages.count < messageCount {
        let tool = round % max(1, toolCount)
        messages.append(object([("role", .string("user")), ("content", .string("Question \(round): what does data set \(tool) say about item \(round * 7)?"))]))
        messages.append(object([
            ("role", .string("assistant")), ("content", .string("")),
            ("reasoning_content", .string("I should call tool_\(tool) with a focused query for round \(round).")),
            ("tool_calls", .array([object([("type", .string("function")), ("function", object([
                ("name", .string("tool_\(tool)")),
                ("arguments", object([("query", .string("item \(round * 7)")), ("limit", JSONValue(5)), ("filters", .array([.string("recent"), .string("verified")])), ("strict", .bool(true))])),
            ]))])])),
        ]))
        messages.append(object([("role", .string("tool")), ("content", .string("{\"item\": \(round * 7), \"status\": \"ok\", \"score\": 0.\(round % 10)5}"))]))
        messages.append(object([("role", .string("assistant")), ("content", .string("Item \(round * 7) is fine (score 0.\(round % 10)5)."))]))
        round += 1
    }
    return object([("messages", .array(Array(messages.prefix(messageCount)))), ("tools", .array(tools)), ("add_generation_prompt", .bool(true))])
}
