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

    /// RAG templates (Granite, Command-R) read `documents`, passed as transformers' render_jinja_template does.
    @Test func documentsReachTheTemplate() throws {
        let cases = try readCases("documents_cases.jsonl").filter { $0["header"] == nil }
        #expect(cases.count >= 4)
        var rendered = 0
        for testCase in cases {
            let name = testCase["name"]?.stringValue ?? "?"
            let file = testCase["template"]?.stringValue ?? ""
            let template = try ChatTemplate(source: try readFixture("chat/" + file),
                                            specialTokens: testCase["special"]?.objectValue ?? JSONObject())
            let tools = testCase["tools"].flatMap { $0.isNull ? nil : $0 }
            do {
                let output = try template.render(messages: testCase["messages"] ?? .array([]), tools: tools,
                                                 documents: testCase["documents"],
                                                 addGenerationPrompt: testCase["add_generation_prompt"]?.boolValue ?? true,
                                                 now: testCase["now"]?.intValue.map(Int64.init))
                #expect(output == testCase["expected"]?.stringValue, "\(name)")
                #expect(output.contains("Louvre"), "\(name): the documents were not rendered")
                rendered += 1
            } catch {
                #expect(testCase["expected_error"]?.stringValue != nil, "\(name): \(error.message)")
            }
        }
        #expect(rendered >= 3)
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

/// strftime_now reads a clock the caller controls: an explicit instant, else SOURCE_DATE_EPOCH, else the real
/// clock; a fixed instant is shown in UTC with English names whatever the host's time zone and locale.
@Suite struct TemplateClockTests {
    static let llama = "meta-llama-Llama-3.2-3B-Instruct.jinja"
    let messages = JSONValue.array([.object(JSONObject([("role", .string("user")), ("content", .string("Hi"))]))])

    @Test func theDateMovesWithTheGivenInstant() throws {
        let template = try ChatTemplate(source: try readFixture("chat/" + TemplateClockTests.llama))
        let july = try template.render(messages: messages, addGenerationPrompt: true, now: 1_721_730_030)
        let newYear = try template.render(messages: messages, addGenerationPrompt: true, now: 1_767_225_599)
        #expect(july.contains("Today Date: 23 Jul 2024\n"))
        #expect(newYear.contains("Today Date: 31 Dec 2025\n"))   // 23:59:59 UTC: still the 31st in UTC
        #expect(july.replacing("23 Jul 2024", with: "31 Dec 2025") == newYear)
    }

    @Test func formatsLikePythonStrftimeInUTC() throws {
        let clock = TemplateClock.fixed(epochSeconds: 951_782_400)   // 2000-02-29T00:00:00Z, a Tuesday
        #expect(clock.format("%Y-%m-%d %H:%M:%S %A %a %B %b %j %Z %z %%") == "2000-02-29 00:00:00 Tuesday Tue February Feb 060 UTC +0000 %")
        #expect(TemplateClock.fixed(epochSeconds: 0).format("%d %b %Y") == "01 Jan 1970")
        #expect(TemplateClock.fixed(epochSeconds: -86_400).format("%d %b %Y") == "31 Dec 1969")
    }

    @Test func explicitBeatsSourceDateEpochWhichBeatsTheRealClock() throws {
        #expect(try TemplateClock.resolve(explicit: 5, sourceDateEpoch: "1000") == .fixed(epochSeconds: 5))
        #expect(try TemplateClock.resolve(explicit: nil, sourceDateEpoch: "1000") == .fixed(epochSeconds: 1000))
        #expect(try TemplateClock.resolve(explicit: nil, sourceDateEpoch: nil) == .system)
        #expect(try TemplateClock.resolve(explicit: nil, sourceDateEpoch: "") == .system)
        for bad in ["-5", "12x", "1e9", " 5", "99999999999999999999"] {
            #expect(throws: GLMError.self, "SOURCE_DATE_EPOCH=\(bad)") {
                _ = try TemplateClock.resolve(explicit: nil, sourceDateEpoch: bad)
            }
        }
    }

    @Test func instantsOutsidePythonsDatetimeAreRefused() throws {
        let template = try ChatTemplate(source: "{{ strftime_now('%Y') }}")
        #expect(try template.render(messages: messages, now: TemplateClock.maxEpochSeconds) == "9999")
        // Year 1: glibc prints "1" (Python on glibc too); only that it renders matters here.
        #expect(try template.render(messages: messages, now: TemplateClock.minEpochSeconds).hasSuffix("1"))
        for bad in [TemplateClock.maxEpochSeconds + 1, TemplateClock.minEpochSeconds - 1, Int64.max, Int64.min] {
            #expect(throws: GLMError.self) { _ = try template.render(messages: messages, now: bad) }
        }
    }
}
