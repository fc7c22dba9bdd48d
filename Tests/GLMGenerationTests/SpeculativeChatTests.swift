import GLMJSON
import GLMSupport
import Testing
@testable import GLMGeneration

/// Speculative decoding through the whole chat stack on the trained tiny chat model. Its drafts come from an
/// oracle (plain decoding's own next token, wrong at every third position) rather than an MTP layer, so that
/// acceptance runs, rejections and their rollback happen on every request; the MTP drafter itself is tested on
/// the MTP fixtures (SpeculativeDecodingTests). Every reply, stream, stop, limit, cancel and constrained output
/// must be plain decoding's.
@Suite(.serialized) struct SpeculativeChatTests {
    static let cases = ["weather", "weather_answer", "greeting", "no_think", "second_turn"]

    static func speculative(_ k: Int) -> JSONValue {
        .object(JSONObject([("method", .string("mtp")), ("num_speculative_tokens", JSONValue(k))]))
    }

    /// Runs `request` plainly, then on a fresh session with speculative decoding (k drafts) whose drafter knows
    /// the plain run's tokens; returns both responses and both event streams (choices of each chunk).
    func pair(_ request: JSONValue, k: Int, cancelAfter: Int? = nil)
        throws -> (plain: JSONValue, fast: JSONValue, plainEvents: [JSONValue], fastEvents: [JSONValue], chat: ChatSession) {
        let f = try ChatFixture.load()
        func run(_ chat: ChatSession, _ request: JSONValue) throws -> (JSONValue, [JSONValue]) {
            var events: [JSONValue] = []
            var deltas = 0
            let response = try chat.complete(request: request) { event in
                events.append(event.chunk["choices"] ?? .null)
                if case .delta = event.kind { deltas += 1 }
                return cancelAfter.map { deltas < $0 } ?? true
            }
            return (response, events)
        }
        let plainChat = try f.session(contextLength: 1024)
        let (plain, plainEvents) = try run(plainChat, request)
        let chat = try f.session(contextLength: 1024)
        chat.engine.draftOverride = oracle(plainChat.lastPromptTokens + plainChat.lastCompletionTokens,
                                           vocab: f.tokenizer.vocabSize, wrongEvery: 3)
        guard case .object(var o) = request else { throw GLMError.invalidArgument("not an object") }
        o["speculative_config"] = SpeculativeChatTests.speculative(k)
        let (fast, fastEvents) = try run(chat, .object(o))
        return (plain, fast, plainEvents, fastEvents, chat)
    }

    @Test(arguments: cases)
    func greedyRepliesAndStreamsEqualPlainDecoding(_ name: String) throws {
        let f = try ChatFixture.load()
        for k in 1...3 {
            let r = try pair(f.request(name) {
                $0["stream_options"] = .object(JSONObject([("include_usage", .bool(true))]))
                $0["seed"] = JSONValue(4)   // fixes the tool-call ids
            }, k: k)
            #expect(withoutIdentity(r.fast)["choices"] == withoutIdentity(r.plain)["choices"], "\(name) k=\(k)")
            #expect(r.fastEvents == r.plainEvents, "\(name) k=\(k): the stream")
            #expect(r.chat.lastCompletionTokens == f.cases[name]?.completionIDs)
            let details = try #require(r.fast["usage"]?["completion_tokens_details"])
            let accepted = details["accepted_prediction_tokens"]?.intValue ?? -1
            let rejected = details["rejected_prediction_tokens"]?.intValue ?? -1
            #expect(accepted > 0 && rejected > 0, "\(name) k=\(k): \(details)")
            #expect(r.plain["usage"]?["completion_tokens_details"] == nil)
        }
    }

    @Test func stopStringsMaxTokensAndCancelsEndWhereThePlainReplyEnds() throws {
        let f = try ChatFixture.load()
        for k in 1...3 {
            let stopped = try pair(f.request("no_think") { $0["stop"] = .array([.string("Nice")]) }, k: k)
            #expect(message(stopped.fast)?["content"] == .string("Hi! "))
            #expect(stopped.fastEvents == stopped.plainEvents)
            for limit in 1...7 {
                let limited = try pair(f.request("greeting") { $0["max_tokens"] = JSONValue(limit) }, k: k)
                #expect(withoutIdentity(limited.fast)["choices"] == withoutIdentity(limited.plain)["choices"])
                #expect(limited.fast["usage"]?["completion_tokens"]?.intValue == limit)
                #expect(limited.chat.lastCompletionTokens.count == limit)
            }
            for after in [1, 4, 5, 9] {
                let cancelled = try pair(f.request("weather"), k: k, cancelAfter: after)
                #expect(finishReason(cancelled.fast) == "cancelled")
                #expect(cancelled.fastEvents == cancelled.plainEvents, "k=\(k) cancel after \(after)")
                #expect(cancelled.chat.lastCompletionTokens == (try pair(f.request("weather"), k: 0, cancelAfter: after)).chat.lastCompletionTokens)
                // The cache holds evaluated tokens only, and the next request answers as a fresh session does.
                let chat = cancelled.chat
                let evaluated = chat.lastPromptTokens + chat.lastCompletionTokens
                #expect(chat.cachedTokens == Array(evaluated.prefix(chat.cachedTokens.count)))
                let seeded = f.request("weather") { $0["seed"] = JSONValue(1) }
                let next = try chat.complete(request: seeded)
                let fresh = try f.session().complete(request: seeded)
                #expect(withoutIdentity(next)["choices"] == withoutIdentity(fresh)["choices"])
            }
        }
    }

    /// The second turn of the tool loop reuses the first turn's cache (both caches rolled back to kept tokens).
    @Test func prefixReuseAcrossTurns() throws {
        let f = try ChatFixture.load()
        let first = try pair(f.request("weather"), k: 2)
        let chat = first.chat
        let plainFirst = try #require(message(first.plain))
        var messages = f.request("weather")["messages"]?.arrayValue ?? []
        messages.append(plainFirst)
        let calls = plainFirst["tool_calls"]?.arrayValue ?? []
        messages.append(.object(JSONObject([("role", .string("tool")), ("tool_call_id", calls.first?["id"] ?? .null),
                                            ("content", .string(#"{"city": "Paris", "temperature": 18, "condition": "sunny"}"#))])))
        let request = f.request("weather") {
            $0["messages"] = .array(messages)
            $0["speculative_config"] = SpeculativeChatTests.speculative(2)
        }
        chat.engine.draftOverride = oracle(f.cases["weather_answer"].map { $0.promptIDs + $0.completionIDs } ?? [],
                                           vocab: f.tokenizer.vocabSize, wrongEvery: 3)
        let second = try chat.complete(request: request)
        #expect(chat.lastCompletionTokens == f.cases["weather_answer"]?.completionIDs)
        // Plain decoding reuses all but the unevaluated eos; here the eos may have been an evaluated draft.
        #expect((cachedTokens(second) ?? 0) >= first.chat.lastPromptTokens.count - 1 || cachedTokens(second) ?? 0 >= 30)
        #expect((second["usage"]?["completion_tokens_details"]?["accepted_prediction_tokens"]?.intValue ?? 0) > 0)
    }

    /// Constrained decoding: each draft is checked against the mask at its position and the matcher rolled back
    /// on rejection; greedy replies equal plain decoding's, sampled ones hold the schema.
    @Test func constrainedRepliesHoldTheSchema() throws {
        let f = try ChatFixture.load()
        let schema = try JSONValue.parse(#"{"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 0, "maximum": 120}}, "required": ["name", "age"], "additionalProperties": false}"#)
        let format = JSONValue.object(JSONObject([("type", .string("json_schema")),
            ("json_schema", .object(JSONObject([("name", .string("p")), ("schema", schema)])))]))
        for k in [1, 3] {
            let greedy = try pair(f.request("no_think") {
                $0["response_format"] = format
                $0["max_tokens"] = JSONValue(120)
            }, k: k)
            #expect(withoutIdentity(greedy.fast)["choices"] == withoutIdentity(greedy.plain)["choices"], "k=\(k)")
            for seed in 0..<2 {
                let sampled = try pair(f.request("no_think") {
                    $0["response_format"] = format
                    $0["max_tokens"] = JSONValue(120)
                    $0["temperature"] = .double(1.3)
                    $0["seed"] = JSONValue(seed)
                }, k: k)
                guard finishReason(sampled.fast) == "stop" else { continue }
                let value = try JSONValue.parse(message(sampled.fast)?["content"]?.stringValue ?? "")
                #expect(value["name"]?.stringValue != nil && value["age"]?.intValue != nil, "\(value)")
            }
        }
    }

    @Test func requestOptionsAreChecked() throws {
        let f = try ChatFixture.load()
        let chat = try f.session()
        func request(_ spec: String) throws -> JSONValue {
            f.request("greeting") { $0["speculative_config"] = try? JSONValue.parse(spec) }
        }
        for bad in [#"{"method": "eagle"}"#, #"{"num_speculative_tokens": 4}"#, #"{"num_speculative_tokens": -1}"#,
                    #"{"num_speculative_tokens": "2"}"#] {
            #expect(throws: GLMError.self, "\(bad)") { try chat.complete(request: try request(bad)) }
        }
        if !f.model.hasMTP {
            // A model without an MTP layer: asking to draft with it is an error, not a silent fallback.
            #expect(throws: GLMError.self) { try chat.complete(request: try request(#"{"num_speculative_tokens": 1}"#)) }
            #expect(throws: GLMError.self) {
                try ChatSession(model: f.model, tokenizer: f.tokenizer, template: f.template,
                                generationConfig: f.generationConfig, contextLength: 256, speculativeTokens: 1)
            }
        } else {
            // The retrained demo model drafts with its own MTP layer: same reply, drafts counted.
            let on = try chat.complete(request: try request(#"{"num_speculative_tokens": 2}"#))
            #expect(chat.lastCompletionTokens == f.cases["greeting"]?.completionIDs)
            #expect(on["usage"]?["completion_tokens_details"]?["accepted_prediction_tokens"] != nil)
        }
        // k = 0 is plain decoding, and the session still works after the errors.
        let off = try chat.complete(request: try request(#"{"method": "mtp", "num_speculative_tokens": 0}"#))
        #expect(chat.lastCompletionTokens == f.cases["greeting"]?.completionIDs)
        #expect(off["usage"]?["completion_tokens_details"] == nil)
    }
}
