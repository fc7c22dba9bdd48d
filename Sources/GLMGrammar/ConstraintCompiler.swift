import GLMJSON
import GLMParsers
import GLMSupport

/// What a constrained output must be.
public enum Constraint: Sendable {
    /// A JSON value valid under the schema.
    case jsonSchema(JSONValue)
    /// Any JSON object (OpenAI `response_format: {"type": "json_object"}`).
    case jsonObject
    /// Text the regular expression matches as a whole (JSON Schema's dialect, see `PatternParser`).
    case regex(String)
    /// GLM-4.7 tool calls: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>`.
    case toolCalls(tools: [JSONValue], choice: ToolCallChoice)
}

public enum ToolCallChoice: Sendable, Equatable {
    /// At least one call to any of the tools (`parallel`: several calls may follow each other).
    case required(parallel: Bool)
    /// Exactly one call to the named tool.
    case named(String)
}

public struct ConstraintOptions: Sendable {
    /// Ids that end the output (allowed exactly when it is complete).
    public var endTokenIDs: [Int32] = []
    /// Refuse schema keywords that cannot be enforced (else they are ignored and listed in `notes`).
    public var strict = false
    /// Whitespace characters allowed between two JSON tokens (0 = compact JSON).
    public var maxWhitespace = 20
    /// The output starts with free reasoning ended by `</think>` (GLM-4.7 with thinking on); the constraint
    /// applies after it. The reasoning may not contain `<tool_call>` (the output parser would end it there).
    public var reasoning = false

    public init() {}

    static let maxWhitespaceLimit = 1000
}

public enum ConstraintCompiler {
    /// Compiles `constraint` for `vocabulary` (see `TokenVocabulary.of(_:)`).
    public static func compile(_ constraint: Constraint, vocabulary: TokenVocabulary,
                               options: ConstraintOptions = ConstraintOptions()) throws(GLMError) -> CompiledGrammar {
        guard options.maxWhitespace >= 0 && options.maxWhitespace <= ConstraintOptions.maxWhitespaceLimit else {
            throw .invalidArgument("max_whitespace must be in 0...\(ConstraintOptions.maxWhitespaceLimit), got \(options.maxWhitespace)")
        }
        var builder = GrammarBuilder()
        var body: [[GrammarSymbol]]
        var notes: [String] = []
        let kind: String
        switch constraint {
        case .jsonSchema(let schema):
            kind = "JSON schema"
            guard schema.objectValue != nil || schema.boolValue != nil else {
                throw .invalidArgument("a JSON schema must be an object or a boolean, not \(schema.compactJSON)")
            }
            body = try json(schema, &builder, options, &notes)
        case .jsonObject:
            kind = "JSON object"
            body = try json(.object(JSONObject([("type", .string("object"))])), &builder, options, &notes)
        case .regex(let pattern):
            kind = "regex"
            let language = try PatternParser.fullMatchLanguage(pattern)
            let regex = try builder.store.compile(language, .raw)
            body = []
            if builder.store.nullable[Int(regex)] {
                // A lexeme never matches the empty text: the empty output is its own alternative.
                body.append([])
                body.append([try builder.lexeme(builder.store.and(regex, builder.store.repeat(builder.store.bytes(.all), 1, nil)))])
            } else {
                body.append([try builder.lexeme(regex)])
            }
        case .toolCalls(let tools, let choice):
            kind = "tool call"
            var compiler = ToolCallGrammar(builder: builder, options: options)
            body = [[try compiler.calls(tools: tools, choice: choice)]]
            builder = compiler.b
            notes = compiler.notes
        }
        var start = try builder.rule("output", body)
        if options.reasoning {
            start = try builder.rule("reasoning+output", [[try reasoning(&builder), start]])
        }
        let tables = try builder.finish(start: start, what: "the \(kind) constraint")
        let grammar = CompiledGrammar(vocabulary: vocabulary, tables: tables, store: builder.store,
                                      endTokenIDs: options.endTokenIDs, kind: kind, notes: notes)
        return grammar
    }

    private static func json(_ schema: JSONValue, _ builder: inout GrammarBuilder, _ options: ConstraintOptions,
                             _ notes: inout [String]) throws(GLMError) -> [[GrammarSymbol]] {
        var c = JSONSchemaCompiler(builder: builder, root: schema, strict: options.strict,
                                   maxWhitespace: options.maxWhitespace, forbidden: nil)
        let value = try c.value(schema, path: "")
        c.b.trailingGap = true
        let body: [[GrammarSymbol]] = [[value]]
        builder = c.b
        notes = c.resolver.ignored
        return body
    }

    /// Free text up to and including the first `</think>`, without `<tool_call>` in it.
    static func reasoning(_ b: inout GrammarBuilder) throws(GLMError) -> GrammarSymbol {
        let end = b.store.literal("</think>")
        let text = b.store.and([RegexStore.full, b.store.not(b.store.containing(end)),
                                b.store.not(b.store.containing(b.store.literal("<tool_call>")))])
        return try b.lexeme(b.store.concat(text, end), live: true)
    }
}

/// The GLM-4.7 tool-call format, typed the way the output parser (vLLM's glm47 parser) reads it back: the
/// parser takes `parameters.properties[key]`'s declared types (`SchemaCoercion`) and turns each value's raw
/// text into JSON, so a value is generated as raw text when its parameter reads as a string, and as JSON
/// otherwise; keys not declared in `properties` always read as strings.
struct ToolCallGrammar {
    var b: GrammarBuilder
    let options: ConstraintOptions
    private(set) var notes: [String] = []
    static let valueEnd = "</arg_value>"

    init(builder: GrammarBuilder, options: ConstraintOptions) {
        b = builder
        self.options = options
    }

    mutating func calls(tools: [JSONValue], choice: ToolCallChoice) throws(GLMError) -> GrammarSymbol {
        var declared: [(name: String, function: JSONObject, index: Int)] = []
        for (i, tool) in tools.enumerated() {
            guard case .object(let t) = tool else { throw .invalidArgument("tools[\(i)] is not an object") }
            let function: JSONObject
            if case .object(let f)? = t["function"] { function = f } else { function = t }
            guard case .string(let name)? = function["name"], !name.isEmpty else {
                throw .invalidArgument("tools[\(i)] has no function name")
            }
            // The parser keeps the first tool of a name.
            if declared.contains(where: { $0.name == name }) { continue }
            declared.append((name, function, i))
        }
        var chosen = declared
        var parallel = true
        switch choice {
        case .required(let p): parallel = p
        case .named(let name):
            chosen = declared.filter { $0.name == name }
            guard !chosen.isEmpty else {
                throw .invalidArgument("tool_choice names the function \(JSONQuote.quote(name)), which the request's tools do not declare")
            }
            parallel = false
        }
        guard !chosen.isEmpty else { throw .invalidArgument("tool_choice \"required\" needs at least one tool") }
        // Whitespace may come before each call and after the last (between lexemes, see GrammarBuilder.gapWidth).
        b.gapWidth = options.maxWhitespace
        b.trailingGap = true
        var callAlternatives: [[GrammarSymbol]] = []
        var failures: [String] = []
        for (name, function, index) in chosen {
            do {
                callAlternatives.append(try call(name: name, function: function, index: index))
            } catch {
                if error.code != .invalidArgument || chosen.count == 1 { throw error }
                failures.append(error.message)
            }
        }
        if callAlternatives.isEmpty {
            throw .invalidArgument("no tool can be called: \(failures.joined(separator: "; "))")
        }
        notes.append(contentsOf: failures)
        let oneCall = try b.rule("call", callAlternatives)
        if !parallel { return oneCall }
        let more = try b.newRule("calls+")
        try b.addAlternative(more, [])
        try b.addAlternative(more, [oneCall, .rule(more)])
        return try b.rule("calls", [[oneCall, .rule(more)]])
    }

    private mutating func call(name: String, function: JSONObject, index: Int) throws(GLMError) -> [GrammarSymbol] {
        let place = "tools[\(index)] (\(JSONQuote.quote(name)))"
        guard !name.contains("<"), PythonStrip.isStripped(name) else {
            throw .invalidArgument("\(place): a function name with '<' or surrounding whitespace cannot be generated in GLM's tool-call format")
        }
        let open = try b.lexeme(b.store.literal("<tool_call>" + name), gap: options.maxWhitespace > 0)
        let close = try b.literal("</tool_call>")
        var parameters = JSONObject()
        switch function["parameters"] {
        case nil, .null?: break
        case .object(let p)?: parameters = p
        case let other?: throw .invalidArgument("\(place): parameters is \(other.compactJSON), expected an object")
        }
        for key in ["$ref", "allOf", "anyOf", "oneOf"] where parameters[key] != nil {
            throw .unsupported("\(place): parameters with \"\(key)\" at the top level cannot be enforced (the output"
                + " parser types arguments by parameters.properties only)")
        }
        let strict = options.strict || function["strict"] == .bool(true)
        let root = JSONValue.object(parameters)
        var properties: [(String, JSONValue)] = []
        if case .object(let props)? = parameters["properties"] {
            for (k, v) in props { properties.append((k, v)) }
        }
        var required: [String] = []
        if case .array(let list)? = parameters["required"] {
            for case .string(let r) in list where !required.contains(r) { required.append(r) }
        }
        var additional: JSONValue = .bool(true)
        if let a = parameters["additionalProperties"] { additional = a }
        if strict {
            var resolver = SchemaResolver(root: root, strict: true)
            _ = try resolver.branches(.object(parameters), path: "\(place).parameters")
        }
        var compiler = JSONSchemaCompiler(builder: b, root: root, strict: strict, maxWhitespace: options.maxWhitespace,
                                          forbidden: Array(ToolCallGrammar.valueEnd.utf8))
        defer { b = compiler.b }

        // Declared parameters, in order; a required one that cannot be written makes the tool uncallable.
        var pairs: [(GrammarSymbol, Bool)] = []
        let declaredNames = properties.map(\.0)
        for (key, schema) in properties {
            let isRequired = required.contains(key)
            guard !key.contains("</arg_key>"), PythonStrip.isStripped(key), !key.isEmpty else {
                if isRequired {
                    throw .invalidArgument("\(place): the parameter name \(JSONQuote.quote(key)) cannot be written in GLM's format")
                }
                continue
            }
            let keyLexeme = try compiler.b.lexeme(compiler.b.store.literal("<arg_key>\(key)</arg_key><arg_value>"))
            guard let value = try parameterValue(schema, &compiler, path: "\(place).parameters.properties.\(key)") else {
                if isRequired {
                    throw .invalidArgument("\(place): no value of parameter \(JSONQuote.quote(key)) satisfies its schema"
                        + " as GLM's output parser types it")
                }
                continue
            }
            pairs.append((try compiler.b.rule("arg \(key)", [[keyLexeme, value]]), isRequired))
        }
        for r in required where !declaredNames.contains(r) {
            // Undeclared but required: the parser reads its value as a string.
            guard additional != .bool(false) else {
                throw .invalidArgument("\(place): parameter \(JSONQuote.quote(r)) is required but additionalProperties is false")
            }
            guard let value = try rawString(all: [additional], extraTypes: [], &compiler, path: "\(place).parameters.\(r)") else {
                throw .invalidArgument("\(place): no string value of parameter \(JSONQuote.quote(r)) satisfies additionalProperties")
            }
            let keyLexeme = try compiler.b.lexeme(compiler.b.store.literal("<arg_key>\(r)</arg_key><arg_value>"))
            pairs.append((try compiler.b.rule("arg \(r)", [[keyLexeme, value]]), true))
        }
        // Other keys (when allowed): identifier-like names, values read back as strings.
        var extra: GrammarSymbol?
        if additional != .bool(false),
           let value = try rawString(all: [additional], extraTypes: [], &compiler, path: "\(place).parameters.additionalProperties") {
            let word = CharSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]).union(CharSet(characters: ".-"))
            let first = CharSet([0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
            let keyLanguage = CharRegex.excluding(declaredNames + required, first: first, rest: word, allowEmpty: false,
                                                  maxLength: 64)
            let keyRegex = compiler.b.store.concat([compiler.b.store.literal("<arg_key>"),
                                                    try compiler.b.store.compile(keyLanguage, .raw),
                                                    compiler.b.store.literal("</arg_key><arg_value>")])
            let keyLexeme = try compiler.b.lexeme(keyRegex)
            let more = try compiler.b.newRule("extra args")
            try compiler.b.addAlternative(more, [])
            try compiler.b.addAlternative(more, [keyLexeme, value, .rule(more)])
            extra = .rule(more)
        }
        // after(i): parameters i... remain.
        var after: GrammarSymbol = try compiler.b.rule("args end", [extra.map { [$0] } ?? []])
        for (pair, isRequired) in pairs.reversed() {
            var alts: [[GrammarSymbol]] = [[pair, after]]
            if !isRequired { alts.append([after]) }
            after = try compiler.b.rule("args", alts)
        }
        notes.append(contentsOf: compiler.resolver.ignored)
        return [open, after, close]
    }

    /// The value of a declared parameter, `</arg_value>` included; nil when none can be written.
    private mutating func parameterValue(_ schema: JSONValue, _ c: inout JSONSchemaCompiler,
                                         path: String) throws(GLMError) -> GrammarSymbol? {
        let types: Set<String>
        if case .object(let o) = schema {
            types = SchemaCoercion.normalizedTypes(SchemaCoercion.declaredTypes(of: o))
        } else {
            types = ["string"]
        }
        let end = try c.b.literal(ToolCallGrammar.valueEnd)
        var alternatives: [[GrammarSymbol]] = []
        let jsonTypes: [(String, JSONType)] = [("null", .null), ("integer", .integer), ("number", .number),
                                               ("boolean", .boolean), ("object", .object), ("array", .array)]
        for (name, type) in jsonTypes where types.contains(name) {
            let restricted = JSONValue.object(JSONObject([("allOf", .array([schema, .object(JSONObject([("type", .string(type.rawValue))]))]))]))
            let v = try c.value(restricted, path: path)
            alternatives.append([v, end])
        }
        if types.contains("string") {
            let extras = types.subtracting(["string"])
            if let raw = try rawString(all: [schema], extraTypes: extras, &c, path: path) { alternatives.append([raw]) }
        }
        if alternatives.isEmpty { return nil }
        return try c.b.rule(path, alternatives)
    }

    /// A raw string value (with `</arg_value>`) that satisfies all of `schemas` and that the parser, given the
    /// other declared types `extraTypes`, still reads as a string; nil when there is none.
    private mutating func rawString(all schemas: [JSONValue], extraTypes: Set<String>, _ c: inout JSONSchemaCompiler,
                                    path: String) throws(GLMError) -> GrammarSymbol? {
        var languages: [CharRegex] = []
        for schema in schemas {
            var options: [CharRegex] = []
            for branch in try c.resolver.branches(schema, path: path) where branch.allows(.string) {
                if let values = branch.enumValues {
                    for v in values {
                        if case .string(let s) = v, try c.admits(v, branch, path: path) { options.append(.literal(s)) }
                    }
                } else if let l = try c.stringLanguage(branch, path: path) {
                    options.append(l)
                }
            }
            if options.isEmpty { return nil }
            languages.append(.alternatives(options))
        }
        if !extraTypes.isEmpty {
            if extraTypes == ["null"] {
                // The parser reads any casing of "null" as null.
                var casings: [String] = [""]
                for c in "null" { casings = casings.flatMap { [$0 + String(c), $0 + c.uppercased()] } }
                languages.append(.excluding(casings))
            } else {
                // Numbers, booleans and JSON would be read from the text: start with a letter that begins none of
                // them (not n/t/f/i/I/N, no digit, sign, bracket or space), or be empty.
                let safe = CharSet([0x41...0x5A, 0x61...0x7A]).subtracting(CharSet(characters: "nNtTfFiI"))
                languages.append(.alternatives([.empty, .sequence([.set(safe), .anyString])]))
            }
        }
        let language: CharRegex = languages.count == 1 ? languages[0] : .intersection(languages)
        let text = try c.b.store.compile(language, .raw)
        let forbidden = c.b.store.containing(c.b.store.literal(ToolCallGrammar.valueEnd))
        let body = c.b.store.concat(c.b.store.and(text, c.b.store.not(forbidden)), c.b.store.literal(ToolCallGrammar.valueEnd))
        if try c.b.store.isEmptyLanguage(body) { return nil }
        // Free text then the end tag is never a dead end; constrained text may be.
        return try c.b.lexeme(body, live: language == .anyString)
    }
}

/// Python's `str.strip()` test on names (they must survive the parser's stripping unchanged).
enum PythonStrip {
    /// `str.isspace()` characters.
    static let space = CharSet([0x09...0x0D, 0x1C...0x20, 0x85...0x85, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000])

    static func isStripped(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { return true }
        return !space.contains(first.value) && !space.contains(last.value)
    }
}
