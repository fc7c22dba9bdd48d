import GLMJSON
import GLMParsers

/// One streamed piece of a chat completion, with the OpenAI `chat.completion.chunk` object a server would send
/// for it. Order: one `.role`, the parser's deltas, one `.finish`, then `.usage` if the request asked for
/// `stream_options.include_usage`.
public struct ChatEvent: Sendable {
    public enum Kind: Sendable, Equatable {
        /// The first chunk: `{"role": "assistant", "content": ""}`.
        case role
        /// Reasoning or content text, a tool call's start (id and name) or a piece of its arguments JSON.
        case delta(ParserEvent)
        /// The last choice chunk: an empty delta and the finish reason.
        case finish(FinishReason)
        /// A chunk without choices carrying the token counts.
        case usage(CompletionUsage)
    }

    public let kind: Kind
    public let chunk: JSONValue

    init(_ kind: Kind, identity: CompletionIdentity) {
        self.kind = kind
        switch kind {
        case .role:
            let delta = JSONObject([("role", .string("assistant")), ("content", .string(""))])
            chunk = ChatCompletionShape.chunk(identity: identity, delta: delta, finishReason: nil)
        case .delta(let event):
            chunk = ChatCompletionShape.chunk(identity: identity, delta: event.json.objectValue ?? JSONObject(),
                                              finishReason: nil)
        case .finish(let reason):
            chunk = ChatCompletionShape.chunk(identity: identity, delta: JSONObject(), finishReason: reason)
        case .usage(let usage):
            chunk = ChatCompletionShape.usageChunk(identity: identity, usage: usage)
        }
    }
}
