import GLMJSON
import GLMSupport

/// Tests/Fixtures/templates, found from this file's path.
func templateFixturesDirectory(file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return parts.joined(separator: "/") + "/Fixtures/templates"
}

func readFixture(_ name: String) throws -> String {
    try FileSystem.readText(templateFixturesDirectory() + "/" + name)
}

/// The JSON objects of a .jsonl fixture, one per non-empty line.
func readCases(_ name: String) throws -> [JSONObject] {
    try readFixture(name).split(separator: "\n").map { line in
        guard let object = try JSONValue.parse(String(line)).objectValue else { throw GLMError.format("\(name): not an object") }
        return object
    }
}

/// Renders one case in the reference format (`messages`, `tools`, `kwargs`, `add_generation_prompt`) and
/// returns nil when the output matches `expected` (or the error matches `expected_error`), else a diagnosis.
func checkChatCase(_ template: ChatTemplateRenderer, _ testCase: JSONObject, exactErrors: Bool = true) -> String? {
    let name = testCase["name"]?.stringValue ?? "?"
    let tools = testCase["tools"].flatMap { $0.isNull ? nil : $0 }
    let kwargs = testCase["kwargs"]?.objectValue ?? JSONObject()
    let addGenerationPrompt = testCase["add_generation_prompt"]?.boolValue ?? false
    // The instant the generator fixed for transformers' strftime_now (seconds since the epoch, UTC).
    let now = testCase["now"]?.intValue.map(Int64.init)
    do {
        let output = try template.render(testCase["messages"] ?? .array([]), tools, addGenerationPrompt, kwargs, now)
        if let expected = testCase["expected"]?.stringValue {
            return output == expected ? nil : "\(name): output differs\n--- expected\n\(expected)\n--- got\n\(output)"
        }
        return "\(name): expected an error (\(testCase["expected_error"]?.stringValue ?? "")), got output \(output)"
    } catch {
        if let expectedError = testCase["expected_error"]?.stringValue {
            if !exactErrors || error.message.hasPrefix(expectedError) { return nil }
            return "\(name): error differs: expected \(expectedError), got \(error.message)"
        }
        return "\(name): unexpected error \(error.message)"
    }
}

import GLMTemplate

struct ChatTemplateRenderer {
    let render: (JSONValue, JSONValue?, Bool, JSONObject, Int64?) throws(GLMError) -> String

    init(_ template: ChatTemplate) {
        render = { messages, tools, addGenerationPrompt, variables, now throws(GLMError) in
            try template.render(messages: messages, tools: tools, addGenerationPrompt: addGenerationPrompt,
                                variables: variables, now: now)
        }
    }
}
