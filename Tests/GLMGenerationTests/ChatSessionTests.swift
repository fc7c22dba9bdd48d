import GLMJSON
import GLMParsers
import GLMSupport
import Glibc
import Testing
@testable import GLMGeneration

/// End to end on the trained tiny chat model: greedy output equals transformers' token for token, the tool-call
/// loop, prefix reuse across turns, streaming, cancellation, stop rules and errors.
@Suite(.serialized) struct ChatSessionTests {
    @Test(arguments: ["weather", "weather_answer", "greeting", "no_think", "second_turn"])
    func greedyOutputEqualsTransformers(_ name: String) throws {
        let f = try ChatFixture.load()
        let reference = try #require(f.cases[name])
        let session = try f.session()
        let response = try session.complete(request: reference.request)
        #expect(session.lastPromptTokens == reference.promptIDs, "prompt: template + tokenizer vs transformers")
        #expect(session.lastCompletionTokens == reference.completionIDs)
        let usage = try #require(response["usage"])
        #expect(usage["prompt_tokens"]?.intValue == reference.promptIDs.count)
        #expect(usage["completion_tokens"]?.intValue == reference.completionIDs.count)
        #expect(usage["total_tokens"]?.intValue == reference.promptIDs.count + reference.completionIDs.count)
        #expect(cachedTokens(response) == 0)
    }

    @Test func theWeatherToolLoop() throws {
        let f = try ChatFixture.load()
        let session = try f.session()
        let first = try session.complete(request: f.request("weather"))
        #expect(first["object"] == .string("chat.completion"))
        #expect(first["model"] == .string("glm-tiny-chat"))
        #expect(first["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
        #expect(finishReason(first) == "tool_calls")
        let m1 = try #require(message(first))
        #expect(m1["reasoning_content"] == .string("The user wants the weather in Paris. I will call get_weather."))
        #expect(m1["content"] == .null)
        let calls = try #require(m1["tool_calls"]?.arrayValue)
        #expect(calls.count == 1)
        #expect(calls.first?["type"] == .string("function"))
        #expect(calls.first?["function"]?["name"] == .string("get_weather"))
        #expect(calls.first?["function"]?["arguments"] == .string(#"{"city": "Paris"}"#))

        // Second request: the conversation so far plus the tool result, as an OpenAI client sends it.
        let firstPrompt = session.lastPromptTokens.count
        let firstCompletion = session.lastCompletionTokens.count
        var messages = f.request("weather")["messages"]?.arrayValue ?? []
        messages.append(m1)
        messages.append(.object(JSONObject([("role", .string("tool")), ("tool_call_id", calls[0]["id"] ?? .null),
                                            ("content", .string(#"{"city": "Paris", "temperature": 18, "condition": "sunny"}"#))])))
        let second = try session.complete(request: f.request("weather") { $0["messages"] = .array(messages) })
        #expect(finishReason(second) == "stop")
        let m2 = try #require(message(second))
        #expect(m2["content"] == .string("It is sunny in Paris, 18 degrees."))
        #expect(m2["reasoning_content"] == .string("The tool says it is sunny and 18 degrees."))
        #expect(m2["tool_calls"] == .array([]))
        // The re-rendered prompt matches transformers' and reuses everything the first turn evaluated (all but
        // the unevaluated eos <|observation|>, which the template writes again).
        #expect(session.lastPromptTokens == f.cases["weather_answer"]?.promptIDs)
        #expect(session.lastCompletionTokens == f.cases["weather_answer"]?.completionIDs)
        #expect(cachedTokens(second) == firstPrompt + firstCompletion - 1)

        // The same second request on a fresh session gives the same response, without reuse.
        let fresh = try f.session().complete(request: f.request("weather") { $0["messages"] = .array(messages) })
        #expect(cachedTokens(fresh) == 0)
        var reused = withoutIdentity(second), recomputed = withoutIdentity(fresh)
        reused = dropUsage(reused); recomputed = dropUsage(recomputed)
        #expect(reused == recomputed)
    }

    func dropUsage(_ r: JSONValue) -> JSONValue {
        guard case .object(var o) = r else { return r }
        o["usage"] = nil
        return .object(o)
    }

    @Test func clearedReasoningCutsTheCacheWherePromptsDiffer() throws {
        let f = try ChatFixture.load()
        let session = try f.session()
        let first = try session.complete(request: f.request("greeting"))
        let m1 = try #require(message(first))
        #expect(m1["content"] == .string("Hello! How can I help you today?"))
        let firstPrompt = session.lastPromptTokens
        let messages: [JSONValue] = (f.request("greeting")["messages"]?.arrayValue ?? []) + [m1,
            .object(JSONObject([("role", .string("user")), ("content", .string("What is 2+2?"))]))]

        // Default: the new user turn drops the old reasoning (`</think>` replaces `<think>...`), so only the
        // prompt up to the first turn's `<|assistant|>` is reused.
        let second = try session.complete(request: f.request("greeting") { $0["messages"] = .array(messages) })
        #expect(session.lastPromptTokens == f.cases["second_turn"]?.promptIDs)
        #expect(session.lastCompletionTokens == f.cases["second_turn"]?.completionIDs)
        #expect(cachedTokens(second) == firstPrompt.count - 1)
        #expect(message(second)?["content"] == .string("2+2 equals 4."))

        // Preserved Thinking (clear_thinking=false): the old turn renders as generated, the whole first turn is reused.
        let preserving = try f.session()
        _ = try preserving.complete(request: f.request("greeting"))
        let evaluated = preserving.cachedTokens.count
        let kept = try preserving.complete(request: f.request("greeting") {
            $0["messages"] = .array(messages)
            $0["chat_template_kwargs"] = .object(JSONObject([("clear_thinking", .bool(false))]))
            $0["max_tokens"] = JSONValue(3)
        })
        #expect(evaluated == firstPrompt.count + (f.cases["greeting"]?.completionIDs.count ?? 0) - 1)
        #expect(cachedTokens(kept) == evaluated)
    }

    @Test func streamingEventsRebuildTheResponse() throws {
        let f = try ChatFixture.load()
        let session = try f.session()
        var events: [ChatEvent] = []
        let response = try session.complete(request: f.request("weather") {
            $0["stream"] = .bool(true)
            $0["stream_options"] = .object(JSONObject([("include_usage", .bool(true))]))
        }) { event in
            events.append(event)
            return true
        }
        #expect(events.first?.kind == .role)
        #expect(events.first?.chunk["choices"]?.arrayValue?.first?["delta"]
                == .object(JSONObject([("role", .string("assistant")), ("content", .string(""))])))
        var reasoning = "", content = "", arguments = "", names: [String] = [], ids: [String] = []
        for e in events {
            #expect(e.chunk["object"] == .string("chat.completion.chunk"))
            #expect(e.chunk["id"] == response["id"])
            if case .delta(let d) = e.kind {
                switch d {
                case .reasoning(let t): reasoning += t
                case .content(let t): content += t
                case .toolCallStart(let index, let id, let name):
                    #expect(index == 0)
                    ids.append(id); names.append(name)
                case .toolCallArguments(_, let delta): arguments += delta
                }
                #expect(e.chunk["choices"]?.arrayValue?.first?["delta"] == d.json)
                #expect(e.chunk["choices"]?.arrayValue?.first?["finish_reason"] == .null)
            }
        }
        let m = try #require(message(response))
        #expect(reasoning == m["reasoning_content"]?.stringValue)
        #expect(content.isEmpty)
        #expect(names == ["get_weather"])
        #expect(ids == [m["tool_calls"]?.arrayValue?.first?["id"]?.stringValue ?? "?"])
        #expect(arguments == #"{"city": "Paris"}"#)
        let finish = try #require(events.dropLast().last)
        #expect(finish.kind == .finish(.toolCalls))
        #expect(finish.chunk["choices"]?.arrayValue?.first?["finish_reason"] == .string("tool_calls"))
        #expect(events.last?.chunk["usage"] == response["usage"])
        #expect(events.last?.chunk["choices"] == .array([]))
    }

    @Test func aCancelledStreamLeavesTheSessionUsable() throws {
        let f = try ChatFixture.load()
        let session = try f.session()
        var deltas = 0
        let cancelled = try session.complete(request: f.request("weather")) { event in
            if case .delta = event.kind { deltas += 1 }
            return deltas < 5
        }
        #expect(finishReason(cancelled) == "cancelled")
        let generated = session.lastCompletionTokens
        #expect(generated.count >= 5 && generated.count < 33)
        // The cache holds the prompt and every sampled token but the one the cancel stopped at (not evaluated).
        #expect(session.cachedTokens == session.lastPromptTokens + generated.dropLast())
        #expect(Array(generated) == Array(f.cases["weather"]?.completionIDs.prefix(generated.count) ?? []))

        // The next request on this session answers as a fresh session does (a seed fixes the tool-call ids too).
        let seeded = f.request("weather") { $0["seed"] = JSONValue(1) }
        let after = try session.complete(request: seeded)
        let fresh = try f.session().complete(request: seeded)
        #expect(cachedTokens(after) == session.lastPromptTokens.count - 1)
        #expect(withoutIdentity(after)["choices"] == withoutIdentity(fresh)["choices"])
        #expect(session.lastCompletionTokens == f.cases["weather"]?.completionIDs)

        // Cancelling at the very first event generates nothing.
        let immediate = try session.complete(request: f.request("greeting")) { _ in false }
        #expect(finishReason(immediate) == "cancelled")
        #expect(immediate["usage"]?["completion_tokens"]?.intValue == 0)
    }

    @Test func stopStringsEndTheReplyAndAreNotShown() throws {
        let f = try ChatFixture.load()
        var pieces = ""
        let response = try f.session().complete(request: f.request("no_think") {
            $0["stop"] = .array([.string("Nice")])
        }) { event in
            if case .delta(.content(let t)) = event.kind { pieces += t }
            return true
        }
        #expect(finishReason(response) == "stop")
        #expect(message(response)?["content"] == .string("Hi! "))
        #expect(pieces == "Hi! ")
        // A stop string that never occurs changes nothing.
        let untouched = try f.session().complete(request: f.request("no_think") { $0["stop"] = .string("zzz") })
        #expect(message(untouched)?["content"] == .string("Hi! Nice to meet you."))
    }

    @Test func maxTokensAndAFullContextEndWithLength() throws {
        let f = try ChatFixture.load()
        let limited = try f.session().complete(request: f.request("greeting") { $0["max_tokens"] = JSONValue(4) })
        #expect(finishReason(limited) == "length")
        #expect(limited["usage"]?["completion_tokens"]?.intValue == 4)
        #expect(message(limited)?["content"] == .null)   // still inside the reasoning

        let promptLength = f.cases["greeting"]?.promptIDs.count ?? 0
        let tight = try f.session(contextLength: promptLength + 3)
        let full = try tight.complete(request: f.request("greeting"))
        #expect(finishReason(full) == "length")
        #expect(full["usage"]?["completion_tokens"]?.intValue == 3)
        #expect(tight.cachedTokens.count == promptLength + 2)
    }

    @Test func thinkingOffAndToolChoiceNone() throws {
        let f = try ChatFixture.load()
        let plain = try f.session().complete(request: f.request("no_think"))
        #expect(message(plain)?["reasoning_content"] == .null)
        #expect(message(plain)?["content"] == .string("Hi! Nice to meet you."))
        let none = try f.session().complete(request: f.request("weather") { $0["tool_choice"] = .string("none") })
        #expect(finishReason(none) == "stop")
        #expect(message(none)?["tool_calls"] == .array([]))
    }

    @Test func errorsLeaveTheSessionUnharmed() throws {
        let f = try ChatFixture.load()
        let session = try f.session(contextLength: 256)
        _ = try session.complete(request: f.request("greeting"))
        let before = session.cachedTokens
        let bad: [(JSONValue, String)] = [
            (f.request("greeting") { $0["temperature"] = .string("warm") }, "\"temperature\""),
            (f.request("weather") { $0["tools"] = .array([.object(JSONObject([("type", .string("function")),
                ("function", .object(JSONObject([("name", .string("f")), ("parameters", .array([]))]))),
            ]))]) }, "tools[0].function.parameters"),
            (f.request("weather_answer") { o in
                var messages = o["messages"]?.arrayValue ?? []
                if case .object(var assistant) = messages[1] {
                    assistant["tool_calls"] = .array([.object(JSONObject([("type", .string("function")),
                        ("function", .object(JSONObject([("name", .string("get_weather")), ("arguments", .string("{city: Paris"))]))),
                    ]))])
                    messages[1] = .object(assistant)
                }
                o["messages"] = .array(messages)
            }, "not valid JSON"),
            (f.request("greeting") { $0["logit_bias"] = .object(JSONObject([("99999", JSONValue(1))])) }, "logit_bias"),
        ]
        for (request, fragment) in bad {
            do {
                _ = try session.complete(request: request)
                Issue.record("expected an error mentioning \(fragment)")
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
                #expect(error.code == .invalidArgument)
            }
            #expect(session.cachedTokens == before)
        }
        // Malformed request text.
        do {
            _ = try session.complete(requestText: #"{"messages": [{"role": "user", "content": "hi"}"#)
            Issue.record("expected a JSON error")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.hasPrefix("request is not valid JSON: "), "\(error.message)")
        }
        #expect(session.cachedTokens == before)
        // A prompt longer than the context.
        let small = try f.session(contextLength: 100)
        do {
            _ = try small.complete(request: f.request("weather"))
            Issue.record("expected a context error")
        } catch {
            #expect(error.code == .contextFull)
            #expect(error.message.contains("213 tokens"))
        }
        // Both sessions then answer a valid request exactly as fresh ones do.
        let fresh = try f.session().complete(request: f.request("second_turn"))
        for s in [session, small] {
            let r = try s.complete(request: f.request("second_turn"))
            #expect(withoutIdentity(r)["choices"] == withoutIdentity(fresh)["choices"])
            #expect(s.lastCompletionTokens == f.cases["second_turn"]?.completionIDs)
        }
    }

    @Test func seededSamplingIsReproducibleAndReuseDoesNotChangeIt() throws {
        let f = try ChatFixture.load()
        func sampled(_ session: ChatSession, seed: Int) throws -> [Int32] {
            _ = try session.complete(request: f.request("greeting") {
                $0["temperature"] = JSONValue.double(1.5)
                $0["top_p"] = JSONValue.double(0.99)
                $0["seed"] = JSONValue(seed)
                $0["max_tokens"] = JSONValue(20)
            })
            return session.lastCompletionTokens
        }
        let a = try sampled(f.session(), seed: 7)
        let b = try sampled(f.session(), seed: 7)
        #expect(a == b)
        let reusing = try f.session()
        _ = try sampled(reusing, seed: 99)
        #expect(try sampled(reusing, seed: 7) == a)
        var distinct: Set<[Int32]> = []
        for seed in 0..<8 { distinct.insert(try sampled(f.session(), seed: seed)) }
        #expect(distinct.count > 1, "temperature 1.5 over 8 seeds always gave the same reply")
    }

    @Test func utf8CharactersAreNeverSplitAcrossEvents() throws {
        let f = try ChatFixture.load()
        let text = "Café ☕ — 日本語 🎉 ok"
        let ids = try f.tokenizer.encode(text, addSpecialTokens: false)
        #expect(ids.count > text.unicodeScalars.count / 2)   // byte-level pieces, some inside characters
        let parser = try StreamingOutputParser(options: OutputParserOptions(thinking: false))
        var pipeline = TextPipeline(tokenizer: f.tokenizer, parser: parser, stopStrings: [])
        var streamed = ""
        for id in ids {
            for case .content(let piece) in try pipeline.append(id) {
                #expect(!piece.unicodeScalars.contains("\u{FFFD}"))
                streamed += piece
            }
        }
        let end = pipeline.finish(emitHeldText: true)
        for case .content(let piece) in end.events { streamed += piece }
        #expect(streamed == text)
        #expect(end.output.content == text)
    }

    /// A raw prompt (text completions): transformers' rendered prompt given as text gives transformers' greedy
    /// tokens, and the output comes back unparsed, markup and all, as content.
    @Test func aRawPromptIsNotRenderedAndItsOutputNotParsed() throws {
        let f = try ChatFixture.load()
        let reference = try #require(f.cases["weather"])
        let session = try f.session()
        var events: [ChatEvent.Kind] = []
        let response = try session.complete(request: .object(JSONObject([
            ("prompt", .string(reference.promptText)), ("temperature", JSONValue(0)),
        ]))) { event in
            events.append(event.kind)
            return true
        }
        #expect(session.lastPromptTokens == reference.promptIDs)
        #expect(session.lastCompletionTokens == reference.completionIDs)
        let content = try #require(message(response)?["content"]?.stringValue)
        // The fixture's text ends with the eos token's text, which ends generation and is not output.
        #expect(content + "<|observation|>" == reference.completionText)
        #expect(content.contains("<tool_call>get_weather"))
        #expect(message(response)?["tool_calls"] == .array([]))
        #expect(message(response)?["reasoning_content"] == .null)
        #expect(finishReason(response) == "stop")
        var streamed = ""
        for case .delta(.content(let piece)) in events { streamed += piece }
        #expect(streamed == content)
    }

    @Test func aRawPromptExcludesWhatOnlyATemplateUses() throws {
        let f = try ChatFixture.load()
        let session = try f.session()
        for (key, value) in [("messages", JSONValue.array([])), ("tools", .array([])),
                             ("chat_template_kwargs", .object(JSONObject()))] {
            let request = JSONValue.object(JSONObject([("prompt", .string("Hi")), (key, value)]))
            #expect(throws: GLMError.self) { try session.complete(request: request) }
        }
        #expect(throws: GLMError.self) { try session.complete(request: .object(JSONObject([("prompt", .string(""))]))) }
        #expect(throws: GLMError.self) { try session.complete(request: .object(JSONObject())) }
    }
}
