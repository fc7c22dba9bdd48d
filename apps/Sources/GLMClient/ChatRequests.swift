/// Requests in the OpenAI chat shape, prepared for glm_chat_render the way libglm's chat path prepares them.
public enum ChatRequests {
    /// The glm_chat_render request for an OpenAI chat request: its messages, tools, chat_template_kwargs and
    /// now, with what libglm's glm_chat_complete (after vLLM) does to messages before rendering: a tool call's
    /// arguments given as JSON text become the object they encode (empty or missing: {}), and a tool message whose
    /// content is a list of text parts becomes their text joined by newlines. So `glm render` and the server's
    /// /tokenize show the prompt /v1/chat/completions evaluates.
    public static func renderRequest(chat request: JSON, addGenerationPrompt: Bool = true) -> JSON {
        var out = JSON.object([])
        if let messages = request["messages"]?.arrayValue {
            out.set("messages", .array(messages.map(normalize)))
        } else if let messages = request["messages"] {
            out.set("messages", messages)  // not a list: glm_chat_render names the error
        }
        if let tools = request["tools"], tools != .array([]), !tools.isNull { out.set("tools", tools) }
        if let documents = request["documents"] { out.set("documents", documents) }
        if let kwargs = request["chat_template_kwargs"], !kwargs.isNull { out.set("chat_template_kwargs", kwargs) }
        if let now = request["now"] { out.set("now", now) }
        out.set("add_generation_prompt", request["add_generation_prompt"] ?? .bool(addGenerationPrompt))
        return out
    }

    static func normalize(_ message: JSON) -> JSON {
        guard case .object = message else { return message }
        var m = message
        if let calls = m["tool_calls"]?.arrayValue {
            m.set("tool_calls", .array(calls.map(normalizeCall)))
        }
        if m["role"]?.stringValue == "tool", let parts = m["content"]?.arrayValue {
            var texts: [String] = []
            for part in parts {
                if let s = part.stringValue { texts.append(s); continue }
                guard part["type"]?.stringValue == "text", let s = part["text"]?.stringValue else { return m }
                texts.append(s)
            }
            m.set("content", .string(texts.joined(separator: "\n")))
        }
        return m
    }

    static func normalizeCall(_ call: JSON) -> JSON {
        guard case .object = call else { return call }
        func fixed(_ function: JSON) -> JSON {
            var f = function
            switch f["arguments"] {
            case nil, .null?, .string("")?:
                f.set("arguments", .object([]))
            case .string(let text)?:
                if let parsed = try? JSON.parse(text), case .object = parsed { f.set("arguments", parsed) }
            default:
                break
            }
            return f
        }
        var c = call
        if let function = c["function"], case .object = function {
            c.set("function", fixed(function))
        } else {
            c = fixed(c)
        }
        return c
    }
}
