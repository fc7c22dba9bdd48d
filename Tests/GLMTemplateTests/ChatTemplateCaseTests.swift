import GLMJSON
import GLMSupport
import GLMTemplate
import Testing

/// Real chat templates of popular models (Qwen, Llama, DeepSeek, gpt-oss, Mistral, Kimi, Phi, Gemma, ...;
/// Tests/Fixtures/templates/chat/, provenance in SOURCES.md) rendered through transformers'
/// render_jinja_template for a dozen conversation shapes (chat_cases.jsonl, tools/make_template_cases.py).
@Suite struct ChatTemplateCaseTests {
    @Test func popularTemplatesMatchTransformers() throws {
        let cases = try readCases("chat_cases.jsonl").filter { $0["header"] == nil }
        #expect(cases.count >= 400)
        var templates: [String: ChatTemplateRenderer] = [:]
        var failures: [String] = []
        for testCase in cases {
            let file = testCase["template"]?.stringValue ?? ""
            if templates[file] == nil {
                let special = testCase["special"]?.objectValue ?? JSONObject()
                templates[file] = ChatTemplateRenderer(try ChatTemplate(source: try readFixture("chat/" + file), specialTokens: special))
            }
            guard let template = templates[file] else { continue }
            if let problem = checkChatCase(template, testCase, exactErrors: false) { failures.append(problem) }
        }
        #expect(failures.isEmpty, "\(failures.count) cases differ:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    @Test func loadsTemplatesFromAModelDirectory() throws {
        let directory = "/tmp/glm-template-test-\(getpid())"
        _ = mkdir(directory, 0o755)
        defer {
            _ = unlink(directory + "/tokenizer_config.json")
            _ = unlink(directory + "/chat_template.jinja")
            _ = rmdir(directory)
        }
        try writeFile(directory + "/tokenizer_config.json", """
            {"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "<E>",
             "chat_template": [{"name": "default", "template": "{{ bos_token }}D{{ messages[0].content }}"},
                               {"name": "tool_use", "template": "T{{ tools | length }}{{ eos_token }}"}]}
            """)
        let messages = JSONValue.array([.object(JSONObject([("role", .string("user")), ("content", .string("x"))]))])
        let byDefault = try ChatTemplate.load(modelDirectory: directory)
        #expect(try byDefault?.render(messages: messages) == "<B>Dx")
        let named = try ChatTemplate.load(modelDirectory: directory, name: "tool_use")
        #expect(try named?.render(messages: messages, tools: .array([])) == "T0<E>")
        #expect(throws: GLMError.self) { _ = try ChatTemplate.load(modelDirectory: directory, name: "missing") }
        try writeFile(directory + "/chat_template.jinja", "J{{ messages | length }}\n")
        #expect(try ChatTemplate.load(modelDirectory: directory)?.render(messages: messages) == "J1")
        #expect(try ChatTemplate.load(modelDirectory: "/nonexistent-dir-\(getpid())") == nil)
    }

    @Test func messagePreprocessingFollowsTransformers() throws {
        // content: null is dropped (renders as missing); reasoning/thinking are aliased to reasoning_content.
        let template = try ChatTemplate(source: "{% for m in messages %}[{{ m.content }}|{{ m.reasoning_content }}|{{ m | list | join(',') }}]{% endfor %}")
        let messages = try JSONValue.parse(#"[{"role": "assistant", "content": null, "reasoning": "r1"}, {"role": "user", "content": "u", "thinking": "t"}]"#)
        #expect(try template.render(messages: messages) == "[|r1|thinking,role,reasoning,reasoning_content][u|t|thinking,role,content,reasoning_content]")
    }

    @Test func explicitNullIsADefinedNone() throws {
        let template = try ChatTemplate.glm47()
        let messages = try JSONValue.parse(#"[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "reasoning_content": "r"}, {"role": "user", "content": "c"}]"#)
        let dropped = try template.render(messages: messages, addGenerationPrompt: true)
        #expect(dropped == "[gMASK]<sop><|user|>a<|assistant|></think>b<|user|>c<|assistant|><think>")
        let kept = try template.render(messages: messages, addGenerationPrompt: true, variables: JSONObject([("clear_thinking", .null)]))
        #expect(kept == "[gMASK]<sop><|user|>a<|assistant|><think>r</think>b<|user|>c<|assistant|><think>")
        let thinkingOff = try template.render(messages: messages, addGenerationPrompt: true, variables: JSONObject([("enable_thinking", .null)]))
        #expect(thinkingOff.hasSuffix("<|assistant|></think>"))
    }
}

private func writeFile(_ path: String, _ text: String) throws {
    guard let file = fopen(path, "w") else { throw GLMError.io("cannot write \(path)") }
    defer { fclose(file) }
    fputs(text, file)
}

#if canImport(Glibc)
import Glibc
#endif
