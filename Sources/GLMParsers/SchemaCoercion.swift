import GLMJSON

/// How vLLM turns the raw text of an `<arg_value>` into a JSON value, given the parameter's JSON schema
/// (`vllm/tool_parsers/utils.py`: `extract_types_from_schema` + `coerce_to_schema_type`).
///
/// The schema's types come from `type` (a string or a list), from the Python types of `enum` members and from
/// every branch of `anyOf`/`oneOf`/`allOf`; none at all means "string". They are tried in the order
/// null > integer > number > boolean > object > array > string and the first that fits wins; when none fits
/// the text is `json.loads`-ed if it decodes to a finite value and kept as a string otherwise.
/// Public for the constrained decoder (GLMGrammar), which generates only values this typing reads back as
/// the schema wants.
public enum SchemaCoercion {
    /// Nested `anyOf`/`oneOf`/`allOf` deeper than this add no types (schemas come from callers).
    static let maxSchemaDepth = 64
    /// Nesting limit for decoding argument values as JSON.
    static let maxValueDepth = 512

    /// `extract_types_from_schema`, as written in the schema (no aliasing).
    public static func declaredTypes(of schema: JSONObject) -> Set<String> {
        var types = Set<String>()
        collectTypes(of: schema, into: &types, depth: 0)
        return types.isEmpty ? ["string"] : types
    }

    private static func collectTypes(of schema: JSONObject, into types: inout Set<String>, depth: Int) {
        switch schema["type"] {
        case .string(let t)?: types.insert(t)
        case .array(let list)?: for case .string(let t) in list { types.insert(t) }
        default: break
        }
        if case .array(let members)? = schema["enum"] {
            for member in members {
                switch member {
                case .null: types.insert("null")
                case .bool: types.insert("boolean")
                case .integer: types.insert("integer")
                case .double: types.insert("number")
                case .string: types.insert("string")
                case .array: types.insert("array")
                case .object: types.insert("object")
                }
            }
        }
        guard depth < maxSchemaDepth else { return }
        for field in ["anyOf", "oneOf", "allOf"] {
            guard case .array(let branches)? = schema[field] else { continue }
            for case .object(let branch) in branches { collectTypes(of: branch, into: &types, depth: depth + 1) }
        }
    }

    /// The types `coerce_to_schema_type` tries: stripped, lower-cased, with its aliases (`int` → `integer`, ...).
    public static func normalizedTypes(_ declared: Set<String>) -> Set<String> {
        Set(declared.map { t in
            let key = PythonText.strip(t).lowercased()
            return typeAliases[key] ?? key
        })
    }

    private static let typeAliases: [String: String] = [
        "str": "string", "text": "string", "varchar": "string", "char": "string", "enum": "string",
        "int": "integer", "int32": "integer", "int64": "integer", "uint": "integer", "uint32": "integer",
        "uint64": "integer", "long": "integer", "short": "integer", "unsigned": "integer",
        "float": "number", "float32": "number", "float64": "number", "double": "number",
        "bool": "boolean", "dict": "object", "arr": "array", "list": "array", "sequence": "array",
    ]

    /// `coerce_to_schema_type(text, types)` with `types` already normalised.
    static func coerce(_ text: String, to types: Set<String>) -> JSONValue {
        if types.contains("null"), text.lowercased() == "null" { return .null }
        if types.contains("integer"), let digits = PythonText.integer(text) { return .integer(digits) }
        if types.contains("number"), let x = PythonText.finiteFloat(text) {
            // Python returns `int(x)` for integral floats: "3.0" becomes 3, "1e20" becomes 100000000000000000000.
            return x.rounded(.towardZero) == x ? .integer(PythonText.exactIntegerText(x)) : .double(x)
        }
        if types.contains("boolean") {
            switch PythonText.strip(text.lowercased()) {
            case "true", "1": return .bool(true)
            case "false", "0": return .bool(false)
            default: break
            }
        }
        if types.contains("object") || types.contains("array"), let decoded = finiteJSON(text) { return decoded }
        if types.contains("string") { return .string(text) }
        return finiteJSON(text) ?? .string(text)
    }

    /// A parameter's value from its raw text, typed by the parameter's schema. An object or array decoded from the
    /// text is the model's JSON as `json.loads` reads it (and `json.dumps` writes it back): its members are not
    /// typed by the schema's `properties`/`items`, as in vLLM 0.33, so `{"n": "3"}` keeps the string "3" and
    /// numbers keep their value and sign (`-0.0` stays `-0.0`; `3e-3` is written `0.003`, as Python writes it).
    static func value(of text: String, schema: JSONObject) -> JSONValue {
        coerce(text, to: normalizedTypes(declaredTypes(of: schema)))
    }

    /// `json.loads(text)` when it succeeds and holds no NaN or infinity; nil otherwise.
    private static func finiteJSON(_ text: String) -> JSONValue? {
        guard let decoded = try? JSONValue.parse(text, maxDepth: maxValueDepth), isFinite(decoded) else { return nil }
        return decoded
    }

    private static func isFinite(_ value: JSONValue) -> Bool {
        switch value {
        case .double(let d): return d.isFinite
        case .array(let items): return items.allSatisfy(isFinite)
        case .object(let object): return object.allSatisfy { isFinite($0.value) }
        default: return true
        }
    }
}
