import GLMJSON
import GLMSupport

/// Compiles a JSON Schema into grammar rules whose language is the JSON texts valid under the schema, in the
/// forms libglm generates:
///
/// - object properties in the order the schema declares them (required ones always present), additional
///   properties (when allowed) after the declared ones;
/// - numbers canonical: integers `0`, `-?[1-9][0-9]*`; other numbers also with a fraction and/or a two-digit
///   exponent (at most 16 integer digits then, so every number is a finite double); with bounds, no exponent;
/// - strings with any JSON escape (`\uXXXX` for characters of the Basic Multilingual Plane);
/// - at most `maxWhitespace` whitespace characters between two tokens.
///
/// Each structural token, literal and string is one lexeme (a key with its colon), so the parser sees few
/// lexemes and the lexer decides most bytes alone; whitespace between them is the grammar's gap lexeme.
struct JSONSchemaCompiler {
    var b: GrammarBuilder
    var resolver: SchemaResolver
    let maxWhitespace: Int
    /// Bytes no lexeme may contain (tool-call values must not contain `</arg_value>`); nil for none.
    let forbidden: RegexStore.ID?
    private var cache: [String: GrammarSymbol] = [:]
    private var whitespace: RegexStore.ID = RegexStore.empty
    private var depth = 0

    static let maxCompileDepth = 160
    /// Array bounds above this are refused (each count up to the bound is a grammar rule).
    static let maxItemsBound = 4096
    static let maxStringLength = 1_000_000

    init(builder: GrammarBuilder, root: JSONValue, strict: Bool, maxWhitespace: Int, forbidden: [UInt8]?) {
        b = builder
        resolver = SchemaResolver(root: root, strict: strict)
        self.maxWhitespace = maxWhitespace
        if let forbidden {
            self.forbidden = b.store.containing(b.store.literal(forbidden))
        } else {
            self.forbidden = nil
        }
        whitespace = b.store.repeat(b.store.bytes(ByteSet([0x20, 0x09, 0x0A, 0x0D])), 0, maxWhitespace)
        b.gapWidth = maxWhitespace
    }

    // MARK: lexemes

    /// A lexeme that whitespace may precede.
    mutating func token(_ regex: RegexStore.ID, mayContainForbidden: Bool = false) throws(GLMError) -> GrammarSymbol {
        var body = regex
        if let forbidden, mayContainForbidden { body = b.store.and(body, b.store.not(forbidden)) }
        return try b.lexeme(body, gap: maxWhitespace > 0)
    }

    mutating func token(_ text: String) throws(GLMError) -> GrammarSymbol { try token(b.store.literal(text)) }

    /// A JSON string literal whose decoded value is in `language`.
    mutating func stringToken(_ language: CharRegex) throws(GLMError) -> GrammarSymbol {
        let content = try b.store.compile(language, .json)
        let quote = b.store.byte(0x22)
        return try token(b.store.concat([quote, content, quote]), mayContainForbidden: true)
    }

    // MARK: values

    /// The symbol deriving the JSON texts `schema` accepts.
    mutating func value(_ schema: JSONValue, path: String) throws(GLMError) -> GrammarSymbol {
        depth += 1
        defer { depth -= 1 }
        guard depth < JSONSchemaCompiler.maxCompileDepth else {
            throw GLMError(.limitExceeded, "\(path): the schema nests more than \(JSONSchemaCompiler.maxCompileDepth) levels")
        }
        // A bare reference is a rule of its own, created before its body so recursive schemas terminate.
        if case .object(let o) = schema, case .string(let ref)? = o["$ref"],
           o.keys.allSatisfy({ $0 == "$ref" || SchemaResolver.annotations.contains($0) }) {
            let key = "ref:" + ref
            if let known = cache[key] { return known }
            let rule = try b.newRule(path)
            cache[key] = .rule(rule)
            let target = try resolver.resolve(ref, at: path)
            try b.addAlternative(rule, [try value(target, path: path + "/$ref")])
            return .rule(rule)
        }
        let key = schema.compactJSON
        if let known = cache[key] { return known }
        let rule = try b.newRule(path)
        cache[key] = .rule(rule)
        for branch in try resolver.branches(schema, path: path) {
            for alternative in try alternatives(branch, path: path) { try b.addAlternative(rule, alternative) }
        }
        return .rule(rule)
    }

    /// All of `schemas` at once.
    mutating func value(all list: [JSONValue], path: String) throws(GLMError) -> GrammarSymbol {
        let schemas = both([], list)
        if schemas.isEmpty { return try value(.bool(true), path: path) }
        if schemas.count == 1 { return try value(schemas[0], path: path) }
        return try value(.object(JSONObject([("allOf", .array(schemas))])), path: path)
    }

    private mutating func alternatives(_ s: SimpleSchema, path: String) throws(GLMError) -> [[GrammarSymbol]] {
        if let values = s.enumValues {
            var out: [[GrammarSymbol]] = []
            for v in values where try admits(v, s, path: path) { out.append([try constant(v, path: path)]) }
            return out
        }
        var types = s.types ?? [.null, .boolean, .object, .array, .number, .string]
        if types.contains(.number) { types.remove(.integer) }
        var out: [[GrammarSymbol]] = []
        for t in JSONType.allCases where types.contains(t) {
            switch t {
            case .null: out.append([try token("null")])
            case .boolean:
                out.append([try token(b.store.or(b.store.literal("true"), b.store.literal("false")))])
            case .string:
                if let language = try stringLanguage(s, path: path) { out.append([try stringToken(language)]) }
            case .integer:
                if let r = try integerLanguage(s) { out.append([try token(b.store.compile(r, .raw))]) }
            case .number:
                if let r = try numberLanguage(s) { out.append([try token(b.store.compile(r, .raw))]) }
            case .array:
                if let a = try array(s, path: path) { out.append(a) }
            case .object:
                if let o = try object(s, path: path) { out.append(o) }
            }
        }
        return out
    }

    // MARK: strings

    /// The decoded strings a simple schema allows (nil: none).
    mutating func stringLanguage(_ s: SimpleSchema, path: String) throws(GLMError) -> CharRegex? {
        if let maxLength = s.maxLength, maxLength < s.minLength { return nil }
        // A length bound is one counting node whose states are built only as characters come, so large bounds
        // cost nothing until used (a string longer than the lexer's state bound then fails with an error).
        if s.minLength > JSONSchemaCompiler.maxStringLength || (s.maxLength ?? 0) > JSONSchemaCompiler.maxStringLength {
            throw GLMError(.limitExceeded, "\(path): string lengths above \(JSONSchemaCompiler.maxStringLength) are not supported")
        }
        var parts: [CharRegex] = []
        for p in s.patterns { parts.append(try PatternParser.searchLanguage(p)) }
        for f in s.formats { if let r = StringFormats.regex(f) { parts.append(r) } }
        // The length bound only where it bounds something: an intersection costs more than the language it
        // bounds (a format's strings are never empty, so its "minLength": 1 is dropped).
        if s.minLength > 0 || s.maxLength != nil {
            let others = parts.isEmpty ? (min: 0, max: nil) : CharRegex.intersection(parts).lengthBounds
            let minNeeded = s.minLength > others.min
            let maxNeeded = s.maxLength.map { m in others.max.map { $0 > m } ?? true } ?? false
            if minNeeded || maxNeeded { parts.append(.repetition(.set(.all), s.minLength, s.maxLength)) }
        }
        if parts.isEmpty { return .anyString }
        return parts.count == 1 ? parts[0] : .intersection(parts)
    }

    // MARK: numbers

    private static func bounds(_ s: SimpleSchema) -> (lower: (Decimal, Bool)?, upper: (Decimal, Bool)?) {
        var lower: (Decimal, Bool)?
        for (v, exclusive) in s.lower {
            guard let d = Decimal(v) else { continue }
            if let (cur, curExclusive) = lower {
                if cur < d || (cur == d && exclusive && !curExclusive) { lower = (d, exclusive) }
            } else {
                lower = (d, exclusive)
            }
        }
        var upper: (Decimal, Bool)?
        for (v, exclusive) in s.upper {
            guard let d = Decimal(v) else { continue }
            if let (cur, curExclusive) = upper {
                if d < cur || (cur == d && exclusive && !curExclusive) { upper = (d, exclusive) }
            } else {
                upper = (d, exclusive)
            }
        }
        return (lower, upper)
    }

    func integerLanguage(_ s: SimpleSchema) throws(GLMError) -> CharRegex? {
        let (lower, upper) = JSONSchemaCompiler.bounds(s)
        var lo: Decimal?, hi: Decimal?
        if let (d, exclusive) = lower { lo = d.fraction.isEmpty && exclusive ? d.successor : d.ceiling }
        if let (d, exclusive) = upper { hi = d.fraction.isEmpty && exclusive ? d.predecessor : d.floor }
        if let lo, let hi, hi < lo { return nil }
        return NumberRanges.integers(lower: lo, upper: hi)
    }

    func numberLanguage(_ s: SimpleSchema) throws(GLMError) -> CharRegex? {
        let (lower, upper) = JSONSchemaCompiler.bounds(s)
        if let (lo, le) = lower, let (hi, he) = upper, hi < lo || (hi == lo && (le || he)) { return nil }
        if lower == nil && upper == nil { return JSONSchemaCompiler.anyNumber }
        return NumberRanges.decimals(lower: lower, upper: upper)
    }

    /// Any number: canonical integers of any length, or up to 16 integer digits with a fraction and/or a
    /// two-digit exponent.
    static let anyNumber: CharRegex = {
        let digit = CharRegex.set(CharSet(0x30...0x39))
        let nonZero = CharRegex.set(CharSet(0x31...0x39))
        let sign = CharRegex.repetition(.literal("-"), 0, 1)
        let integer = CharRegex.alternatives([.literal("0"), .sequence([nonZero, .repetition(digit, 0, nil)])])
        let shortInteger = CharRegex.alternatives([.literal("0"), .sequence([nonZero, .repetition(digit, 0, 15)])])
        let fraction = CharRegex.sequence([.literal("."), .repetition(digit, 1, nil)])
        let exponent = CharRegex.sequence([.set(CharSet(characters: "eE")), .repetition(.set(CharSet(characters: "+-")), 0, 1),
                                           .repetition(digit, 1, 2)])
        let withFraction = CharRegex.sequence([shortInteger, .alternatives([
            fraction, exponent, .sequence([fraction, exponent])])])
        return .sequence([sign, .alternatives([integer, withFraction])])
    }()

    // MARK: arrays

    private mutating func array(_ s: SimpleSchema, path: String) throws(GLMError) -> [GrammarSymbol]? {
        let prefix = s.prefixItems
        var maxCount = s.maxItems
        if !s.itemsAllowed { maxCount = min(maxCount ?? prefix.count, prefix.count) }
        if let m = maxCount, m < s.minItems { return nil }
        let chainLength = max(prefix.count, s.minItems, maxCount ?? 0)
        guard chainLength <= JSONSchemaCompiler.maxItemsBound else {
            throw GLMError(.limitExceeded, "\(path): array bounds above \(JSONSchemaCompiler.maxItemsBound) items are not supported")
        }
        func element(_ c: inout JSONSchemaCompiler, _ k: Int) throws(GLMError) -> GrammarSymbol {
            if k < prefix.count { return try c.value(all: prefix[k], path: "\(path)/prefixItems/\(k)") }
            return try c.value(all: s.items, path: "\(path)/items")
        }
        let comma = try token(",")
        // rest(k): k elements written, more may follow. Beyond every bound all states are alike: one loop.
        func rest(_ c: inout JSONSchemaCompiler) throws(GLMError) -> GrammarSymbol? {
            var current: GrammarSymbol
            var k: Int
            if let m = maxCount {
                guard m >= 1 else { return nil }
                current = try c.b.rule("\(path)/items\(m)", [[]])
                k = m
            } else {
                let stable = max(prefix.count, s.minItems, 1)
                let loop = try c.b.newRule("\(path)/items*")
                try c.b.addAlternative(loop, [])
                try c.b.addAlternative(loop, [comma, try element(&c, stable), .rule(loop)])
                current = .rule(loop)
                k = stable
            }
            while k > 1 {
                k -= 1
                var alts: [[GrammarSymbol]] = [[comma, try element(&c, k), current]]
                if k >= s.minItems { alts.append([]) }
                current = try c.b.rule("\(path)/items\(k)", alts)
            }
            return current
        }
        let open = try token("["), close = try token("]")
        var out: [[GrammarSymbol]] = []
        if s.minItems == 0 { out.append([open, close]) }
        if let r1 = try rest(&self) { out.append([open, try element(&self, 0), r1, close]) }
        guard !out.isEmpty else { return nil }
        return [try b.rule("\(path)/array", out)]
    }

    // MARK: objects

    private mutating func object(_ s: SimpleSchema, path: String) throws(GLMError) -> [GrammarSymbol]? {
        var props = s.properties
        // Required names without a declaration take the additionalProperties schema.
        for r in s.required where !props.contains(where: { $0.name == r }) {
            guard s.additionalAllowed else { return nil }
            props.append((r, s.additional))
        }
        let open = try token("{"), close = try token("}"), comma = try token(",")
        let colon = b.store.concat(whitespace, b.store.byte(UInt8(ascii: ":")))
        // Keys: the property name as any JSON spelling of it.
        var declared: [(key: GrammarSymbol, value: GrammarSymbol, required: Bool)] = []
        for (name, schemas) in props {
            let required = s.required.contains(name)
            // A property whose schema admits nothing cannot appear (and then the object cannot, if required).
            let valuePath = "\(path)/properties/\(JSONSchemaCompiler.pointerEscape(name))"
            let v = try value(all: schemas, path: valuePath)
            let quote = b.store.byte(0x22)
            let keyRegex = b.store.concat([quote, try b.store.compile(.literal(name), .json), quote, colon])
            declared.append((try token(keyRegex, mayContainForbidden: true), v, required))
        }
        // Additional properties: any other key.
        var additionalPair: (GrammarSymbol, GrammarSymbol)?
        if s.additionalAllowed {
            var keyLanguage = CharRegex.anyString
            if !props.isEmpty {
                keyLanguage = .excluding(props.map(\.name))
            }
            let quote = b.store.byte(0x22)
            let keyRegex = b.store.concat([quote, try b.store.compile(keyLanguage, .json), quote, colon])
            additionalPair = (try token(keyRegex, mayContainForbidden: true),
                              try value(all: s.additional, path: "\(path)/additionalProperties"))
        }
        // The rest of the object from some point on, in two versions: the first pair written needs a comma
        // before it (`following`) or not (`first`).
        var first: GrammarSymbol = .rule(try b.newRule("\(path)/additional"))
        var following: GrammarSymbol = .rule(try b.newRule("\(path)/additional"))
        for (symbol, needsComma) in [(first, false), (following, true)] {
            guard case .rule(let r) = symbol else { continue }
            try b.addAlternative(r, [])
            if let (k, v) = additionalPair {
                let more = try b.newRule("\(path)/additional+")
                try b.addAlternative(more, [])
                try b.addAlternative(more, [comma, k, v, .rule(more)])
                try b.addAlternative(r, (needsComma ? [comma] : []) + [k, v, .rule(more)])
            }
        }
        // Declared properties from last to first: each one written (then the rest follows a comma) or, when
        // optional, skipped.
        for (key, v, required) in declared.reversed() {
            var firstAlts: [[GrammarSymbol]] = [[key, v, following]]
            var followingAlts: [[GrammarSymbol]] = [[comma, key, v, following]]
            if !required {
                firstAlts.append([first])
                followingAlts.append([following])
            }
            let newFirst = try b.rule("\(path)/properties", firstAlts)
            following = try b.rule("\(path)/properties", followingAlts)
            first = newFirst
        }
        return [open, first, close]
    }

    static func pointerEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "~": out += "~0"
            case "/": out += "~1"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: constants

    /// A value written exactly (objects with their keys in the given order), whitespace allowed between tokens.
    mutating func constant(_ v: JSONValue, path: String) throws(GLMError) -> GrammarSymbol {
        switch v {
        case .null: return try token("null")
        case .bool(let x): return try token(x ? "true" : "false")
        case .integer(let text): return try token(text)
        case .double(let d):
            guard d.isFinite else { throw GLMError(.invalidArgument, "\(path): a non-finite number in enum/const") }
            return try token(PythonFloat.repr(d))
        case .string(let s): return try stringToken(.literal(s))
        case .array(let items):
            var seq: [GrammarSymbol] = [try token("[")]
            for (i, item) in items.enumerated() {
                if i > 0 { seq.append(try token(",")) }
                seq.append(try constant(item, path: path))
            }
            seq.append(try token("]"))
            return try b.rule("\(path)/const", [seq])
        case .object(let o):
            var seq: [GrammarSymbol] = [try token("{")]
            let colon = b.store.concat(whitespace, b.store.byte(UInt8(ascii: ":")))
            let quote = b.store.byte(0x22)
            for (i, (k, item)) in o.enumerated() {
                if i > 0 { seq.append(try token(",")) }
                seq.append(try token(b.store.concat([quote, try b.store.compile(.literal(k), .json), quote, colon]),
                                     mayContainForbidden: true))
                seq.append(try constant(item, path: path))
            }
            seq.append(try token("}"))
            return try b.rule("\(path)/const", [seq])
        }
    }

    // MARK: validation (for enum and const members)

    /// Whether `v` satisfies the keywords of `s` (sub-schemas checked recursively).
    mutating func admits(_ v: JSONValue, _ s: SimpleSchema, path: String) throws(GLMError) -> Bool {
        switch v {
        case .null: return s.allows(.null)
        case .bool: return s.allows(.boolean)
        case .integer, .double:
            let isInteger: Bool
            if case .double(let d) = v { isInteger = d.isFinite && d.rounded() == d } else { isInteger = true }
            guard s.allows(.number) || (isInteger && s.allows(.integer)) else { return false }
            guard let d = Decimal(v) else { return false }
            let (lower, upper) = JSONSchemaCompiler.bounds(s)
            if let (lo, ex) = lower, d < lo || (ex && d == lo) { return false }
            if let (hi, ex) = upper, hi < d || (ex && d == hi) { return false }
            return true
        case .string(let text):
            guard s.allows(.string), let language = try stringLanguage(s, path: path) else { return false }
            let regex = try b.store.compile(language, .raw)
            return try b.store.matches(regex, Array(text.utf8))
        case .array(let items):
            guard s.allows(.array), items.count >= s.minItems, items.count <= (s.maxItems ?? Int.max) else { return false }
            for (i, item) in items.enumerated() {
                let schemas: [JSONValue]
                if i < s.prefixItems.count { schemas = s.prefixItems[i] } else if s.itemsAllowed { schemas = s.items } else { return false }
                guard try admits(item, all: schemas, path: path) else { return false }
            }
            return true
        case .object(let o):
            guard s.allows(.object) else { return false }
            for r in s.required where !o.contains(r) { return false }
            for (k, item) in o {
                if let schemas = s.property(k) {
                    guard try admits(item, all: schemas, path: path) else { return false }
                } else {
                    guard s.additionalAllowed, try admits(item, all: s.additional, path: path) else { return false }
                }
            }
            return true
        }
    }

    mutating func admits(_ v: JSONValue, all schemas: [JSONValue], path: String) throws(GLMError) -> Bool {
        for schema in schemas {
            var any = false
            for branch in try resolver.branches(schema, path: path) where try admits(v, branch, path: path) {
                any = true
                break
            }
            if !any { return false }
        }
        return true
    }
}
