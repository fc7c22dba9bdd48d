import GLMJSON

/// Why a completion ended, as OpenAI reports it (`cancelled` is ours: the stream callback returned false).
public enum FinishReason: String, Sendable {
    case stop
    case length
    case toolCalls = "tool_calls"
    case cancelled
}

/// Token counts of one request; `cachedPromptTokens` were reused from the session's KV cache.
public struct CompletionUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedPromptTokens: Int
    /// Speculative decoding (only when the request used it): drafts verified and drafts accepted, reported in
    /// OpenAI's `usage.completion_tokens_details.accepted_prediction_tokens` / `rejected_prediction_tokens`
    /// (the fields of its Predicted Outputs, the same notion: proposed tokens the model kept or refused).
    public var speculativeDrafted: Int?
    public var speculativeAccepted: Int?

    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
    }

    public var speculative: (drafted: Int, accepted: Int)? {
        get { speculativeDrafted.flatMap { d in speculativeAccepted.map { (d, $0) } } }
        set { speculativeDrafted = newValue?.drafted; speculativeAccepted = newValue?.accepted }
    }

    public var json: JSONValue {
        var fields: [(String, JSONValue)] = [
            ("prompt_tokens", JSONValue(promptTokens)),
            ("completion_tokens", JSONValue(completionTokens)),
            ("total_tokens", JSONValue(promptTokens + completionTokens)),
            ("prompt_tokens_details", .object(JSONObject([("cached_tokens", JSONValue(cachedPromptTokens))]))),
        ]
        if let (drafted, accepted) = speculative {
            fields.append(("completion_tokens_details", .object(JSONObject([
                ("accepted_prediction_tokens", JSONValue(accepted)),
                ("rejected_prediction_tokens", JSONValue(drafted - accepted)),
            ]))))
        }
        return .object(JSONObject(fields))
    }
}

/// The `id`, `created` and `model` every object of one completion repeats.
public struct CompletionIdentity: Sendable, Equatable {
    public var id: String
    public var created: Int
    public var model: String

    public init(id: String, created: Int, model: String) {
        self.id = id
        self.created = created
        self.model = model
    }
}

/// Builds the OpenAI chat-completions JSON objects (vLLM's field set and order).
public enum ChatCompletionShape {
    /// A whole `chat.completion` object.
    public static func response(identity: CompletionIdentity, message: JSONValue, finishReason: FinishReason,
                                usage: CompletionUsage) -> JSONValue {
        let choice = JSONObject([
            ("index", JSONValue(0)),
            ("message", message),
            ("logprobs", .null),
            ("finish_reason", .string(finishReason.rawValue)),
        ])
        return .object(JSONObject([
            ("id", .string(identity.id)),
            ("object", .string("chat.completion")),
            ("created", JSONValue(identity.created)),
            ("model", .string(identity.model)),
            ("choices", .array([.object(choice)])),
            ("usage", usage.json),
        ]))
    }

    /// A `chat.completion.chunk` with one choice carrying `delta`.
    public static func chunk(identity: CompletionIdentity, delta: JSONObject, finishReason: FinishReason?) -> JSONValue {
        let choice = JSONObject([
            ("index", JSONValue(0)),
            ("delta", .object(delta)),
            ("logprobs", .null),
            ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null),
        ])
        return chunkObject(identity: identity, choices: [.object(choice)], usage: nil)
    }

    /// The final chunk of a stream with `stream_options.include_usage`: no choices, only `usage`.
    public static func usageChunk(identity: CompletionIdentity, usage: CompletionUsage) -> JSONValue {
        chunkObject(identity: identity, choices: [], usage: usage)
    }

    private static func chunkObject(identity: CompletionIdentity, choices: [JSONValue], usage: CompletionUsage?) -> JSONValue {
        var o = JSONObject([
            ("id", .string(identity.id)),
            ("object", .string("chat.completion.chunk")),
            ("created", JSONValue(identity.created)),
            ("model", .string(identity.model)),
            ("choices", .array(choices)),
        ])
        if let usage { o["usage"] = usage.json }
        return .object(o)
    }
}
