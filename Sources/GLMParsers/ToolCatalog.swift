import GLMSupport
import GLMJSON

/// The tools a request declares, looked up by name: which calls to keep and how to type their arguments.
struct ToolCatalog {
    /// One declared function's parameters.
    struct Function {
        /// `parameters.properties`; nil when missing or empty, in which case every value stays a string
        /// (vLLM's `_fix_arg_types` leaves the arguments alone).
        var properties: JSONObject?
        /// Parameters whose schema says exactly "string": their values stream character by character.
        /// Any other value is sent once closed, because typing may change its spelling.
        var streamedKeys: Set<String>

        func streamsValue(of key: String) -> Bool { properties == nil || streamedKeys.contains(key) }

        /// The JSON value of parameter `key` whose raw text is `text`.
        func value(of key: String, text: String) -> JSONValue {
            guard case .object(let schema)? = properties?[key] else { return .string(text) }
            return SchemaCoercion.value(of: text, schema: schema)
        }
    }

    /// What calls to unknown tools are typed with: nothing.
    static let undeclared = Function(properties: nil, streamedKeys: [])

    private var functions: [String: Function] = [:]

    /// Reads an OpenAI `tools` array: `{"type": "function", "function": {"name", "parameters"}}` entries, or
    /// bare `{"name", "parameters"}` objects. When two tools share a name the first one counts, as in vLLM.
    init(tools: JSONValue?) throws(GLMError) {
        guard let tools, !tools.isNull else { return }
        guard case .array(let entries) = tools else { throw .invalidArgument("parser options: tools must be an array") }
        for (i, entry) in entries.enumerated() {
            guard case .object(let tool) = entry else {
                throw .invalidArgument("parser options: tools[\(i)] is not an object")
            }
            let function: JSONObject
            if case .object(let wrapped)? = tool["function"] { function = wrapped } else { function = tool }
            guard case .string(let name)? = function["name"] else {
                throw .invalidArgument("parser options: tools[\(i)] has no function name")
            }
            if functions[name] != nil { continue }
            var properties: JSONObject?
            if case .object(let parameters)? = function["parameters"],
               case .object(let declared)? = parameters["properties"], !declared.isEmpty {
                properties = declared
            }
            var streamed = Set<String>()
            for (key, schema) in properties ?? JSONObject() {
                let types: Set<String> = if case .object(let s) = schema { SchemaCoercion.declaredTypes(of: s) } else { ["string"] }
                if types == ["string"] { streamed.insert(key) }
            }
            functions[name] = Function(properties: properties, streamedKeys: streamed)
        }
    }

    func function(named name: String) -> Function? { functions[name] }
}
