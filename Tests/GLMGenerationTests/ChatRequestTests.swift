import GLMFormats
import GLMJSON
import GLMSupport
import Testing
@testable import GLMGeneration

/// The OpenAI request: field types, ranges and vLLM's message preprocessing.
@Suite struct ChatRequestTests {
    func request(_ text: String, defaults: SamplingParameters = SamplingParameters()) throws(GLMError) -> ChatRequest {
        try ChatRequest(json: JSONValue.parse(text), defaults: defaults)
    }

    func expectError(_ text: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try request(text)
            Issue.record("expected an error mentioning \(fragment)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func allFieldsAreRead() throws {
        let r = try request("""
        {"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}],
         "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
         "tool_choice": "none", "temperature": 0.6, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
         "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
         "logit_bias": {"5": 200, "7": -3.5}, "seed": -1, "max_tokens": 10, "max_completion_tokens": 20,
         "stop": ["a", "b"], "chat_template_kwargs": {"enable_thinking": false, "clear_thinking": false},
         "stream": true, "stream_options": {"include_usage": true}, "user": "ignored", "n": 1}
        """)
        #expect(r.model == "glm-4.7")
        #expect(r.tools?.count == 1 && r.toolChoice == .none)
        #expect(r.sampling.temperature == 0.6 && r.sampling.topP == 0.9 && r.sampling.topK == 20)
        #expect(r.sampling.minP == 0.05 && r.sampling.presencePenalty == 0.5 && r.sampling.frequencyPenalty == -0.5)
        #expect(r.sampling.repetitionPenalty == 1.1)
        #expect(r.sampling.logitBias == [5: 100, 7: -3.5])   // clamped to [-100, 100] as OpenAI and vLLM do
        #expect(r.seed == UInt64.max)
        #expect(r.maxTokens == 20)                          // max_completion_tokens wins
        #expect(r.stop == ["a", "b"])
        #expect(r.templateVariables["enable_thinking"] == .bool(false))
        #expect(r.templateVariables["clear_thinking"] == .bool(false))
        #expect(r.stream && r.streamIncludeUsage)
    }

    @Test func defaultsComeFromTheGenerationConfigAndCanBeOverridden() throws {
        let config = try GenerationConfig(json: JSONValue.parse("""
        {"eos_token_id": [1, 2], "temperature": 1.0, "top_p": 0.95, "top_k": 40}
        """), source: "generation_config.json")
        let defaults = SamplingParameters(defaults: config)
        let r = try request(#"{"messages": [{"role": "user", "content": "x"}], "top_p": null}"#, defaults: defaults)
        #expect(r.sampling.temperature == 1.0 && r.sampling.topP == 0.95 && r.sampling.topK == 40)
        let s = try request(#"{"messages": [{"role": "user", "content": "x"}], "temperature": 0}"#, defaults: defaults)
        #expect(s.sampling.isGreedy && s.sampling.topP == 0.95)
        #expect(try request(#"{"messages": [{"role": "user", "content": "x"}], "stop": "END"}"#).stop == ["END"])
    }

    @Test func toolCallArgumentsAreParsedAsVLLMDoes() throws {
        let r = try request("""
        {"messages": [{"role": "user", "content": "w?"},
          {"role": "assistant", "content": null, "reasoning": "think",
           "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{\\"x\\": 1}"}},
                          {"id": "c2", "type": "function", "function": {"name": "b"}},
                          {"id": "c3", "type": "function", "function": {"name": "c", "arguments": ""}},
                          {"id": "c4", "type": "function", "function": {"name": "d", "arguments": {"y": [true]}}}]},
          {"role": "tool", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]}
        """)
        let calls = r.messages[1]["tool_calls"]?.arrayValue ?? []
        #expect(calls.map { $0["function"]?["arguments"]?.compactJSON ?? "" } == [#"{"x":1}"#, "{}", "{}", #"{"y":[true]}"#])
        #expect(r.messages[2]["content"] == .string("one\ntwo"))
    }

    @Test func badArgumentsAreErrors() {
        expectError(#"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}]}"#,
                    "messages[0].tool_calls[0].function.arguments is not valid JSON")
        expectError(#"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]}"#,
                    "must encode a JSON object")
        expectError(#"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]}"#,
                    "messages[0].tool_calls[0].function.name")
    }

    @Test func wrongTypesNameTheField() {
        expectError("[]", "expected a JSON object")
        expectError(#"{"model": "x"}"#, "\"messages\" is required")
        expectError(#"{"messages": []}"#, "\"messages\" is empty")
        expectError(#"{"messages": [1]}"#, "messages[0] is not a JSON object")
        expectError(#"{"messages": [{"content": "x"}]}"#, "messages[0].role")
        expectError(#"{"messages": [{"role": "user", "content": 5}]}"#, "messages[0].content")
        let ok = #""messages": [{"role": "user", "content": "x"}]"#
        expectError("{\(ok), \"temperature\": \"hot\"}", "\"temperature\" is \"hot\", expected a number")
        expectError("{\(ok), \"top_k\": 1.5}", "\"top_k\" is 1.5, expected an integer")
        expectError("{\(ok), \"max_tokens\": 0}", "\"max_tokens\" is 0, expected at least 1")
        expectError("{\(ok), \"stop\": [1]}", "\"stop\"[0]")
        expectError("{\(ok), \"stream\": 1}", "\"stream\" is 1, expected true or false")
        expectError("{\(ok), \"logit_bias\": {\"x\": 1}}", "\"logit_bias\" key \"x\"")
        expectError("{\(ok), \"logit_bias\": {\"1\": true}}", "expected a number")
        expectError("{\(ok), \"chat_template_kwargs\": []}", "\"chat_template_kwargs\"")
        expectError("{\(ok), \"tool_choice\": \"required\"}", "\"required\" needs a non-empty \"tools\" list")
        expectError("{\(ok), \"tool_choice\": 3}", "\"tool_choice\" is 3")
        expectError("{\(ok), \"n\": 2}", "\"n\" is 2")
        expectError("{\(ok), \"stream_options\": {\"include_usage\": \"yes\"}}", "stream_options.include_usage")
    }

    @Test func nonFiniteLogitBiasIsRefusedAsTemperatureIs() {
        let ok = #""messages": [{"role": "user", "content": "x"}]"#
        for value in ["NaN", "Infinity", "-Infinity", "1e999"] {
            expectError("{\(ok), \"logit_bias\": {\"5\": \(value)}}", "\"logit_bias\"[\"5\"]")
            expectError("{\(ok), \"logit_bias\": {\"5\": \(value)}}", "expected a finite number")
            expectError("{\(ok), \"temperature\": \(value)}", "expected a finite number")
        }
        #expect((try? request("{\(ok), \"logit_bias\": {\"5\": -1e300}}"))?.sampling.logitBias == [5: -100])
    }

    @Test func fieldsThatShapeTheResponseAreRefusedUntilSupported() throws {
        let ok = #""messages": [{"role": "user", "content": "x"}]"#
        let refused: [(String, String)] = [
            (#""response_format": {"type": "grammar", "grammar": "x"}"#, "\"response_format\" of type \"grammar\""),
            (#""logprobs": true"#, "\"logprobs\" is not supported"),
            (#""logprobs": true, "top_logprobs": 5"#, "\"logprobs\""),
            (#""top_logprobs": 3"#, "\"top_logprobs\" is 3"),
        ]
        for (field, fragment) in refused {
            do {
                _ = try request("{\(ok), \(field)}")
                Issue.record("accepted \(field)")
            } catch {
                #expect(error.code == .unsupported, "\(field): \(error.message)")
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
        expectError("{\(ok), \"response_format\": {}}", "\"response_format\".type is missing")
        expectError("{\(ok), \"response_format\": \"json\"}", "\"response_format\" is \"json\", expected a JSON object")
        expectError("{\(ok), \"logprobs\": 1}", "\"logprobs\" is 1, expected true or false")
        // The neutral values are what every OpenAI client may send.
        for field in [#""response_format": {"type": "text"}"#, #""response_format": null"#, #""logprobs": false"#,
                      #""logprobs": null, "top_logprobs": null"#, #""logprobs": false, "top_logprobs": 0"#] {
            #expect(throws: Never.self, "\(field)") { _ = try request("{\(ok), \(field)}") }
        }
    }

    @Test func toolSchemasAreChecked() {
        let ok = #""messages": [{"role": "user", "content": "x"}]"#
        expectError("{\(ok), \"tools\": [\"f\"]}", "tools[0] is \"f\", expected a JSON object")
        expectError("{\(ok), \"tools\": [{\"type\": \"retrieval\"}]}", "tools[0].type")
        expectError("{\(ok), \"tools\": [{\"type\": \"function\"}]}", "tools[0].function is missing")
        expectError("{\(ok), \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"\"}}]}", "tools[0].function.name")
        expectError("{\(ok), \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": \"string\"}}]}",
                    "tools[0].function.parameters (tool \"f\") is \"string\", expected a JSON Schema object")
        expectError("{\(ok), \"tools\": {}}", "\"tools\" is {}, expected a list")
    }

    @Test func structuredOutputFields() throws {
        let ok = #""messages": [{"role": "user", "content": "x"}]"#
        let tools = #""tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]"#
        var r = try request("{\(ok), \"response_format\": {\"type\": \"json_object\"}}")
        #expect(r.responseFormat == .jsonObject)
        r = try request("{\(ok), \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"n\", \"strict\": true, \"schema\": {\"type\": \"integer\"}}}}")
        #expect(r.responseFormat == .jsonSchema(.object(JSONObject([("type", .string("integer"))])), strict: true))
        r = try request("{\(ok), \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"n\"}}}")
        #expect(r.responseFormat == .jsonSchema(.bool(true), strict: false))
        r = try request("{\(ok), \(tools), \"tool_choice\": \"required\", \"parallel_tool_calls\": false}")
        #expect(r.toolChoice == .required && !r.parallelToolCalls)
        r = try request("{\(ok), \(tools), \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"f\"}}}")
        #expect(r.toolChoice == .function("f"))
        expectError("{\(ok), \(tools), \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"g\"}}}",
                    "names the function \"g\"")
        expectError("{\(ok), \(tools), \"tool_choice\": {\"type\": \"function\"}}", "needs \"function\"")
        expectError("{\(ok), \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"f\"}}}", "names the function")
        expectError("{\(ok), \"response_format\": {\"type\": \"json_schema\"}}", "needs a \"json_schema\" object")
        expectError("{\(ok), \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"schema\": 3}}}",
                    "expected a JSON Schema object")
        expectError("{\(ok), \(tools), \"tool_choice\": \"required\", \"response_format\": {\"type\": \"json_object\"}}",
                    "cannot be combined")
        expectError("{\(ok), \"parallel_tool_calls\": 1}", "\"parallel_tool_calls\" is 1")
    }
}
