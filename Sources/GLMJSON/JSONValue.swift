import GLMSupport

/// A JSON value that keeps what Python's `json` module keeps: object key order, and integers of any size as written.
///
/// Numbers are parsed the way `json.loads` does: a literal without fraction or exponent is a Python `int`
/// (kept as its decimal text, any length), anything else a Python `float` (a Double). Writing follows
/// `json.dumps` (see `JSONWriter`), so `1.0` stays `1.0`, `1e5` becomes `100000.0` and `12345678901234567890`
/// stays as written.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer literal, kept as normalised decimal text (no leading `+`, `-0` becomes `0`).
    case integer(String)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public init(_ value: Int) { self = .integer(String(value)) }

    public var isNull: Bool { if case .null = self { return true } else { return false } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }

    /// The value as an `Int` if it is an integer literal that fits (or a float with an integral value).
    public var intValue: Int? {
        switch self {
        case .integer(let text): return Int(text)
        case .double(let d): return d.rounded() == d && abs(d) < 9.2e18 ? Int(d) : nil
        default: return nil
        }
    }

    /// The value as a `Double` for either number kind.
    public var doubleValue: Double? {
        switch self {
        case .integer(let text): return Double(text)
        case .double(let d): return d
        default: return nil
        }
    }

    /// `value["key"]` on an object, nil otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

/// A JSON object with insertion-ordered keys. Setting an existing key keeps its position (as a Python dict does).
public struct JSONObject: Equatable, Sendable, Sequence {
    public private(set) var keys: [String] = []
    private var storage: [String: JSONValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public func contains(_ key: String) -> Bool { storage[key] != nil }

    /// Key/value pairs in insertion order.
    public var pairs: [(key: String, value: JSONValue)] { keys.compactMap { k in storage[k].map { (k, $0) } } }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> { pairs.makeIterator() }

    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.keys == b.keys && a.storage == b.storage }
}
