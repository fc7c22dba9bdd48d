import GLMSupport

// jinja2's built-in tests (`x is name`).

extension Interpreter {
    func applyTest(_ call: FilterCall, to value: Value, _ frame: Frame) throws(GLMError) -> Bool {
        try test(call.name, value, try evalArguments(call.arguments, frame))
    }

    func test(_ name: String, _ value: Value, _ args: Arguments) throws(GLMError) -> Bool {
        func argument() throws(GLMError) -> Value {
            guard let v = args.positional.first ?? args.keywords.first?.1 else {
                throw typeError("test '\(name)' needs an argument")
            }
            return v
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer":
            switch value { case .int, .bigInt: return true; default: return false }
        case "float": if case .float = value { return true } else { return false }
        case "number":
            switch value { case .int, .bigInt, .bool, .float: return true; default: return false }
        case "string": return value.stringValue != nil
        case "mapping": if case .dict = value { return true } else { return false }
        case "iterable":
            switch value {
            case .list, .tuple, .dict, .string, .markup, .undefined, .loop, .iterator: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .list, .tuple, .dict, .string, .markup, .undefined: return true
            default: return false
            }
        case "callable":
            switch value { case .callable, .loop: return true; default: return false }
        case "escaped": if case .markup = value { return true } else { return false }
        case "lower":
            let s = try text(value, unitsPerByte: Interpreter.unicodeTextUnits)
            guard s.unicodeScalars.contains(where: { $0.properties.isCased }) else { return false }
            return try lower(s) == s
        case "upper":
            let s = try text(value, unitsPerByte: Interpreter.unicodeTextUnits)
            guard s.unicodeScalars.contains(where: { $0.properties.isCased }) else { return false }
            return try upper(s) == s
        case "even", "odd":
            let r = try binary(.modulo, value, .int(2))
            return try equal(r, .int(name == "even" ? 0 : 1))
        case "divisibleby":
            return try equal(try binary(.modulo, value, try argument()), .int(0))
        case "eq", "equalto", "==": return try equal(value, try argument())
        case "ne", "!=": return !(try equal(value, try argument()))
        case "lt", "lessthan", "<": return try pythonCompare(value, try argument(), symbol: "<") < 0
        case "le", "<=": return try pythonCompare(value, try argument(), symbol: "<=") <= 0
        case "gt", "greaterthan", ">": return try pythonCompare(value, try argument(), symbol: ">") > 0
        case "ge", ">=": return try pythonCompare(value, try argument(), symbol: ">=") >= 0
        case "in": return try contains(try argument(), value)
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.callable(let a), .callable(let b)): return a === b
            case (.int(let a), .int(let b)): return a == b && a >= -5 && a <= 256
            default: return false
            }
        case "filter":
            guard let n = value.stringValue else { return false }
            return JinjaParser.knownFilters.contains(n)
        case "test":
            guard let n = value.stringValue else { return false }
            return JinjaParser.knownTests.contains(n)
        default:
            throw error("TemplateRuntimeError", "No test named '\(name)'.")
        }
    }
}
