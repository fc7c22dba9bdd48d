import GLMJSON
import GLMSupport

/// A JSON type as JSON Schema names it ("integer" is a subset of "number").
enum JSONType: String, CaseIterable, Hashable {
    case null, boolean, object, array, number, integer, string
}

/// One alternative of a schema after `$ref`, `allOf`, `anyOf` and `oneOf` at its top are resolved: the
/// keywords that constrain a value directly. Sub-schemas (properties, items) stay as lists of raw schemas that
/// must all hold (an implicit `allOf`), compiled lazily by the caller.
struct SimpleSchema {
    /// nil = any type.
    var types: Set<JSONType>?
    /// nil = no `enum`/`const`; otherwise the values allowed (already intersected when merged).
    var enumValues: [JSONValue]?
    var properties: [(name: String, schemas: [JSONValue])] = []
    var required: [String] = []
    /// Schemas every additional property must satisfy; `additionalAllowed` false = none may appear.
    var additional: [JSONValue] = []
    var additionalAllowed = true
    var prefixItems: [[JSONValue]] = []
    var items: [JSONValue] = []
    var itemsAllowed = true
    var minItems = 0
    var maxItems: Int?
    var minLength = 0
    var maxLength: Int?
    var patterns: [String] = []
    var formats: [String] = []
    /// Lower and upper bounds of numbers: the bound's JSON value and whether it is exclusive.
    var lower: [(JSONValue, Bool)] = []
    var upper: [(JSONValue, Bool)] = []

    func property(_ name: String) -> [JSONValue]? { properties.first { $0.name == name }?.schemas }

    func allows(_ type: JSONType) -> Bool {
        guard let types else { return true }
        if types.contains(type) { return true }
        return type == .integer && types.contains(.number)
    }
}

/// Resolves the combinators of schemas within one root document, and reports what it cannot honour.
struct SchemaResolver {
    let root: JSONValue
    let strict: Bool
    /// What the schema names that libglm ignores (non-strict mode), with where.
    private(set) var ignored: [String] = []

    /// Keywords that only annotate.
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding", "example", "strict",
    ]
    /// Keywords that constrain values and are not supported.
    static let unsupported: Set<String> = [
        "multipleOf", "uniqueItems", "contains", "minContains", "maxContains", "patternProperties", "propertyNames",
        "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies", "if", "then",
        "else", "not", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef", "nullable",
        "$anchor", "$dynamicAnchor", "$recursiveAnchor", "contentSchema",
    ]
    static let formats: Set<String> = ["date-time", "date", "time", "uuid", "email", "ipv4", "ipv6", "uri", "hostname"]

    static let maxDepth = 48
    static let maxEnum = 10_000
    /// Bounds the total work of resolving one constraint's schemas (schema objects read plus merges), so
    /// schemas that multiply through references (`allOf` of self-references) fail fast instead of growing.
    static let maxWork = 300_000
    private(set) var work = 0

    private mutating func spend(_ units: Int, _ path: String) throws(GLMError) {
        work += units
        guard work <= SchemaResolver.maxWork else {
            throw GLMError(.limitExceeded, "\(path): the schema needs more than \(SchemaResolver.maxWork) steps to"
                + " resolve (references that multiply through allOf?)")
        }
    }
    static let maxBranches = 1024

    init(root: JSONValue, strict: Bool) {
        self.root = root
        self.strict = strict
    }

    // MARK: $ref

    /// The schema a `$ref` names: a JSON pointer into the root document ("#", "#/$defs/x", "#/definitions/x",
    /// "#/properties/a/items", ...). Other documents are not reachable.
    func resolve(_ ref: String, at path: String) throws(GLMError) -> JSONValue {
        guard ref.hasPrefix("#") else {
            throw GLMError(.unsupported, "\(path): $ref \(JSONQuote.quote(ref)) points outside the schema (only"
                + " references within the document, \"#...\", are supported)")
        }
        var pointer = String(ref.dropFirst())
        if pointer.isEmpty { return root }
        guard pointer.hasPrefix("/") else {
            throw GLMError(.unsupported, "\(path): $ref \(JSONQuote.quote(ref)) is not a JSON pointer (anchors are not supported)")
        }
        pointer.removeFirst()
        var current = root
        for rawPart in pointer.split(separator: "/", omittingEmptySubsequences: false) {
            let part = SchemaResolver.unescapePointer(String(rawPart))
            switch current {
            case .object(let o):
                guard let next = o[part] else {
                    throw GLMError(.invalidArgument, "\(path): $ref \(JSONQuote.quote(ref)) names nothing (no \(JSONQuote.quote(part)))")
                }
                current = next
            case .array(let a):
                guard let i = Int(part), i >= 0, i < a.count else {
                    throw GLMError(.invalidArgument, "\(path): $ref \(JSONQuote.quote(ref)) names nothing (no index \(part))")
                }
                current = a[i]
            default:
                throw GLMError(.invalidArgument, "\(path): $ref \(JSONQuote.quote(ref)) names nothing")
            }
        }
        return current
    }

    private static func unescapePointer(_ s: String) -> String {
        var out = ""
        var chars = s.makeIterator()
        while let c = chars.next() {
            if c == "~" {
                switch chars.next() {
                case "0": out.append("~")
                case "1": out.append("/")
                case let other?: out.append("~"); out.append(other)
                case nil: out.append("~")
                }
            } else {
                out.append(c)
            }
        }
        // Percent-encoding (URI fragments): %XX for the characters a pointer may need.
        guard out.contains("%") else { return out }
        var bytes: [UInt8] = []
        var utf8 = Array(out.utf8)[...]
        while let b = utf8.popFirst() {
            if b == UInt8(ascii: "%"), utf8.count >= 2,
               let v = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: branches

    /// The alternatives of `schema`: each a `SimpleSchema`; none when the schema admits nothing.
    mutating func branches(_ schema: JSONValue, path: String, depth: Int = 0) throws(GLMError) -> [SimpleSchema] {
        guard depth < SchemaResolver.maxDepth else {
            throw GLMError(.limitExceeded, "\(path): $ref/allOf/anyOf nest more than \(SchemaResolver.maxDepth) deep"
                + " at the top of one schema (a reference cycle without a value in between?)")
        }
        switch schema {
        case .bool(true): return [SimpleSchema()]
        case .bool(false): return []
        case .object(let o):
            return try branches(o, path: path, depth: depth)
        default:
            throw GLMError(.invalidArgument, "\(path): a schema must be an object or a boolean, not \(schema.compactJSON)")
        }
    }

    private mutating func branches(_ o: JSONObject, path: String, depth: Int) throws(GLMError) -> [SimpleSchema] {
        try spend(1 + o.count, path)
        var product: [SimpleSchema] = [try simple(o, path: path)]
        func combine(_ options: [SimpleSchema]) throws(GLMError) {
            try spend(product.count * options.count, path)
            var next: [SimpleSchema] = []
            for a in product {
                for b in options {
                    if let m = try SchemaResolver.merge(a, b) { next.append(m) }
                    guard next.count <= SchemaResolver.maxBranches else {
                        throw GLMError(.limitExceeded, "\(path): the schema has more than \(SchemaResolver.maxBranches)"
                            + " alternatives after expanding allOf/anyOf/oneOf")
                    }
                }
            }
            product = next
        }
        if case .string(let ref)? = o["$ref"] {
            try combine(try branches(try resolve(ref, at: path), path: path + "/$ref", depth: depth + 1))
        } else if let ref = o["$ref"] {
            throw GLMError(.invalidArgument, "\(path)/$ref is \(ref.compactJSON), expected a string")
        }
        if let all = o["allOf"] {
            guard case .array(let members) = all else {
                throw GLMError(.invalidArgument, "\(path)/allOf is \(all.compactJSON), expected a list")
            }
            for (i, m) in members.enumerated() {
                try combine(try branches(m, path: "\(path)/allOf/\(i)", depth: depth + 1))
            }
        }
        for key in ["anyOf", "oneOf"] {
            guard let any = o[key] else { continue }
            guard case .array(let members) = any, !members.isEmpty else {
                throw GLMError(.invalidArgument, "\(path)/\(key) is \(any.compactJSON), expected a non-empty list")
            }
            var options: [SimpleSchema] = []
            for (i, m) in members.enumerated() {
                options.append(contentsOf: try branches(m, path: "\(path)/\(key)/\(i)", depth: depth + 1))
            }
            try combine(options)
        }
        return product
    }

    /// The direct keywords of one schema object.
    private mutating func simple(_ o: JSONObject, path: String) throws(GLMError) -> SimpleSchema {
        var s = SimpleSchema()
        var problems: [String] = []
        func note(_ what: String) { problems.append(what) }

        for (key, value) in o {
            switch key {
            case "type":
                var set = Set<JSONType>()
                switch value {
                case .string(let t):
                    guard let jt = JSONType(rawValue: t) else { throw badValue(path, key, value, "a JSON Schema type") }
                    set.insert(jt)
                case .array(let list):
                    for item in list {
                        guard case .string(let t) = item, let jt = JSONType(rawValue: t) else {
                            throw badValue(path, key, value, "a list of JSON Schema types")
                        }
                        set.insert(jt)
                    }
                default: throw badValue(path, key, value, "a type name or a list of them")
                }
                s.types = set
            case "enum":
                guard case .array(let values) = value else { throw badValue(path, key, value, "a list") }
                guard values.count <= SchemaResolver.maxEnum else {
                    throw GLMError(.limitExceeded, "\(path)/enum has \(values.count) values (at most \(SchemaResolver.maxEnum))")
                }
                s.enumValues = SchemaResolver.intersect(s.enumValues, values)
            case "const":
                s.enumValues = SchemaResolver.intersect(s.enumValues, [value])
            case "properties":
                guard case .object(let props) = value else { throw badValue(path, key, value, "an object") }
                for (name, sub) in props { s.properties.append((name, [sub])) }
            case "required":
                guard case .array(let names) = value else { throw badValue(path, key, value, "a list of names") }
                for n in names {
                    guard case .string(let name) = n else { throw badValue(path, key, value, "a list of names") }
                    if !s.required.contains(name) { s.required.append(name) }
                }
            case "additionalProperties":
                switch value {
                case .bool(let b): s.additionalAllowed = b
                case .object: s.additional = [value]
                default: throw badValue(path, key, value, "a boolean or a schema")
                }
            case "items":
                switch value {
                case .bool(let b): s.itemsAllowed = b
                case .object: s.items = [value]
                case .array(let tuple):
                    // Draft 4–7 tuple form: `items` as a list is `prefixItems`, `additionalItems` the rest.
                    s.prefixItems = tuple.map { [$0] }
                    switch o["additionalItems"] {
                    case nil: break
                    case .bool(let b)?: s.itemsAllowed = b
                    case let extra?: s.items = [extra]
                    }
                default: throw badValue(path, key, value, "a schema")
                }
            case "additionalItems":
                if case .array? = o["items"] { break }
                // Without a tuple `items` it has no effect.
            case "prefixItems":
                guard case .array(let tuple) = value else { throw badValue(path, key, value, "a list of schemas") }
                s.prefixItems = tuple.map { [$0] }
            case "minItems": s.minItems = try count(path, key, value)
            case "maxItems": s.maxItems = try count(path, key, value)
            case "minLength": s.minLength = try count(path, key, value)
            case "maxLength": s.maxLength = try count(path, key, value)
            case "pattern":
                guard case .string(let p) = value else { throw badValue(path, key, value, "a string") }
                s.patterns.append(p)
            case "format":
                guard case .string(let f) = value else { throw badValue(path, key, value, "a string") }
                if SchemaResolver.formats.contains(f) {
                    s.formats.append(f)
                } else {
                    note("format \(JSONQuote.quote(f))")
                }
            case "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum":
                switch value {
                case .integer(let text) where text.count > 400:
                    throw GLMError(.limitExceeded, "\(path)/\(key) has more than 400 digits")
                case .integer, .double:
                    let exclusive = key.hasPrefix("exclusive")
                    if key.hasSuffix("inimum") { s.lower.append((value, exclusive)) } else { s.upper.append((value, exclusive)) }
                case .bool(let b):
                    // Draft 4: exclusiveMinimum/Maximum are booleans modifying minimum/maximum.
                    guard key.hasPrefix("exclusive") else { throw badValue(path, key, value, "a number") }
                    if b {
                        let base = key == "exclusiveMinimum" ? "minimum" : "maximum"
                        if let bound = o[base], bound.doubleValue != nil {
                            if base == "minimum" { s.lower.append((bound, true)) } else { s.upper.append((bound, true)) }
                        }
                    }
                default: throw badValue(path, key, value, "a number")
                }
            case "$ref", "allOf", "anyOf", "oneOf":
                break   // handled by `branches`
            default:
                if SchemaResolver.unsupported.contains(key) { note(key) }
            }
        }
        // Draft 4's boolean exclusivity applies to the plain bound: drop the inclusive duplicate.
        if case .bool(true)? = o["exclusiveMinimum"] { s.lower.removeAll { !$0.1 } }
        if case .bool(true)? = o["exclusiveMaximum"] { s.upper.removeAll { !$0.1 } }
        if !problems.isEmpty {
            if strict {
                throw GLMError(.unsupported, "\(path.isEmpty ? "schema" : path): \(problems.joined(separator: ", "))"
                    + " \(problems.count == 1 ? "is" : "are") not supported for constrained decoding (strict schema)")
            }
            for p in problems { ignored.append("\(path.isEmpty ? "/" : path): \(p)") }
        }
        return s
    }

    private func badValue(_ path: String, _ key: String, _ value: JSONValue, _ expected: String) -> GLMError {
        GLMError(.invalidArgument, "\(path)/\(key) is \(value.compactJSON), expected \(expected)")
    }

    private func count(_ path: String, _ key: String, _ value: JSONValue) throws(GLMError) -> Int {
        guard let d = value.doubleValue, d >= 0, d.rounded() == d else {
            throw badValue(path, key, value, "a non-negative integer")
        }
        return d > 1e9 ? 1_000_000_000 : Int(d)
    }

    private static func intersect(_ current: [JSONValue]?, _ values: [JSONValue]) -> [JSONValue] {
        guard let current else { return values }
        return current.filter { c in values.contains { JSONEquality.equal($0, c) } }
    }

    // MARK: merging

    /// The conjunction of two simple schemas; nil when they contradict on type.
    static func merge(_ a: SimpleSchema, _ b: SimpleSchema) throws(GLMError) -> SimpleSchema? {
        var m = a
        if let bt = b.types {
            if let at = a.types {
                var t = Set<JSONType>()
                for x in at where b.allows(x) { t.insert(x) }
                for x in bt where a.allows(x) { t.insert(x) }
                if t.isEmpty { return nil }
                m.types = t
            } else {
                m.types = bt
            }
        }
        if let be = b.enumValues { m.enumValues = intersect(a.enumValues, be) }
        // Properties: a key declared by only one side must also satisfy the other side's additionalProperties.
        var props: [(name: String, schemas: [JSONValue])] = []
        for (name, schemas) in a.properties {
            if let other = b.property(name) {
                props.append((name, both(schemas, other)))
            } else {
                props.append((name, both(schemas, b.additionalAllowed ? b.additional : [.bool(false)])))
            }
        }
        for (name, schemas) in b.properties where a.property(name) == nil {
            props.append((name, both(schemas, a.additionalAllowed ? a.additional : [.bool(false)])))
        }
        m.properties = props
        for r in b.required where !m.required.contains(r) { m.required.append(r) }
        m.additionalAllowed = a.additionalAllowed && b.additionalAllowed
        m.additional = both(a.additional, b.additional)
        // Items: position by position, each side's prefix item or its `items`.
        let n = max(a.prefixItems.count, b.prefixItems.count)
        var prefix: [[JSONValue]] = []
        for i in 0..<n {
            func at(_ s: SimpleSchema) -> [JSONValue] {
                if i < s.prefixItems.count { return s.prefixItems[i] }
                return s.itemsAllowed ? s.items : [.bool(false)]
            }
            prefix.append(both(at(a), at(b)))
        }
        m.prefixItems = prefix
        m.items = both(a.items, b.items)
        m.itemsAllowed = a.itemsAllowed && b.itemsAllowed
        m.minItems = max(a.minItems, b.minItems)
        m.maxItems = [a.maxItems, b.maxItems].compactMap { $0 }.min()
        m.minLength = max(a.minLength, b.minLength)
        m.maxLength = [a.maxLength, b.maxLength].compactMap { $0 }.min()
        m.patterns = a.patterns + b.patterns
        m.formats = a.formats + b.formats
        m.lower = a.lower + b.lower
        m.upper = a.upper + b.upper
        return m
    }
}

/// Schemas that must all hold, without repeating one (allOf [A, A] is A): merges of self-referencing schemas
/// would otherwise double their lists at every level.
func both(_ a: [JSONValue], _ b: [JSONValue]) -> [JSONValue] {
    var out = a
    for s in b where !out.contains(s) { out.append(s) }
    return out
}

/// Equality of JSON values as JSON Schema defines it (1 and 1.0 are equal; key order does not matter).
enum JSONEquality {
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.integer, .double), (.double, .integer), (.double, .double):
            guard let x = a.doubleValue, let y = b.doubleValue else { return false }
            return x == y
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x {
                guard let w = y[k], equal(v, w) else { return false }
            }
            return true
        default: return false
        }
    }
}
