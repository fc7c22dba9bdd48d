import GLMJSON
import GLMSupport

/// Typed, checked reads of the fields of a JSON config object. A present field of the wrong type is an error that
/// names the file, the field and the expected type; an absent field (or `null`, which transformers treats the same
/// for every field read here) yields the default.
struct ConfigFields {
    let object: JSONObject
    let source: String
    /// Prepended to field names in messages, for nested objects (`"rope_parameters."`).
    let keyPrefix: String

    init(_ json: JSONValue, source: String, keyPrefix: String = "") throws(GLMError) {
        guard case .object(let object) = json else { throw .format("'\(source)': expected a JSON object") }
        self.object = object
        self.source = source
        self.keyPrefix = keyPrefix
    }

    func error(_ key: String, _ what: String) -> GLMError {
        .format("'\(source)': field \"\(keyPrefix)\(key)\" \(what)")
    }

    /// The value of the first of `keys` that is present and not null, with the key that held it.
    func value(_ keys: [String]) -> (key: String, value: JSONValue)? {
        for key in keys {
            if let v = object[key], !v.isNull { return (key, v) }
        }
        return nil
    }

    func int(_ keys: String..., default fallback: Int) throws(GLMError) -> Int {
        try optionalInt(keys) ?? fallback
    }

    func optionalInt(_ keys: String...) throws(GLMError) -> Int? { try optionalInt(keys) }

    func optionalInt(_ keys: [String]) throws(GLMError) -> Int? {
        guard let (key, v) = value(keys) else { return nil }
        return try integer(v, key: key)
    }

    /// An integer literal that fits `Int`; `2.0` or `true` are not integers (transformers' strict config types agree).
    func integer(_ v: JSONValue, key: String) throws(GLMError) -> Int {
        guard case .integer(let text) = v else { throw error(key, "is \(v.compactJSON), expected an integer") }
        guard let n = Int(text) else { throw error(key, "is \(text), which does not fit a 64-bit integer") }
        return n
    }

    func double(_ keys: String..., default fallback: Double) throws(GLMError) -> Double {
        try optionalDouble(keys) ?? fallback
    }

    func optionalDouble(_ keys: String...) throws(GLMError) -> Double? { try optionalDouble(keys) }

    func optionalDouble(_ keys: [String]) throws(GLMError) -> Double? {
        guard let (key, v) = value(keys) else { return nil }
        switch v {
        case .integer, .double:
            guard let d = v.doubleValue else { throw error(key, "is \(v.compactJSON), expected a number") }
            return d
        default:
            throw error(key, "is \(v.compactJSON), expected a number")
        }
    }

    func bool(_ keys: String..., default fallback: Bool) throws(GLMError) -> Bool {
        try optionalBool(keys) ?? fallback
    }

    func optionalBool(_ keys: String...) throws(GLMError) -> Bool? { try optionalBool(keys) }

    func optionalBool(_ keys: [String]) throws(GLMError) -> Bool? {
        guard let (key, v) = value(keys) else { return nil }
        guard case .bool(let b) = v else { throw error(key, "is \(v.compactJSON), expected true or false") }
        return b
    }

    func optionalString(_ keys: String...) throws(GLMError) -> String? {
        guard let (key, v) = value(keys) else { return nil }
        guard case .string(let s) = v else { throw error(key, "is \(v.compactJSON), expected a string") }
        return s
    }

    /// `eos_token_id`-style fields: an integer, a list of integers, or absent (empty list). Ids must be non-negative.
    func tokenIDs(_ key: String) throws(GLMError) -> [Int] {
        guard let (key, v) = value([key]) else { return [] }
        let items: [JSONValue]
        if case .array(let a) = v { items = a } else { items = [v] }
        var ids: [Int] = []
        for item in items {
            guard case .integer(let text) = item, let id = Int(text), id >= 0 else {
                throw error(key, "is \(v.compactJSON), expected a non-negative token id or a list of them")
            }
            ids.append(id)
        }
        return ids
    }

    func tokenID(_ key: String) throws(GLMError) -> Int? {
        guard let id = try optionalInt(key) else { return nil }
        if id < 0 { throw error(key, "is \(id), expected a non-negative token id") }
        return id
    }

    /// Reads a config file from disk and parses it. I/O and JSON errors name the file.
    static func load(_ path: String) throws(GLMError) -> JSONValue {
        do {
            return try JSONValue.parse(FileSystem.readText(path), maxDepth: 64)
        } catch {
            if error.message.contains(path) { throw error }
            throw GLMError(error.code, "'\(path)': \(error.message)")
        }
    }
}
