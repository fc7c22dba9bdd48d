import GLMJSON
import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

// Python's operators on template values: arithmetic with int/float promotion, sequence concatenation and
// repetition, `%` formatting, equality across numeric types, ordering, and `in`.

/// A number as Python sees it for arithmetic (bool is an int).
enum Number {
    case int(Int)
    case float(Double)

    init?(_ value: Value) {
        switch value {
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .float(let d): self = .float(d)
        case .bigInt(let t): self = .float(Double(t) ?? .nan)
        default: return nil
        }
    }

    var double: Double {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        }
    }
}

/// `a == b` in Python.
func pythonEqual(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)), (.string(let x), .markup(let y)),
         (.markup(let x), .string(let y)), (.markup(let x), .markup(let y)):
        return pythonStringsEqual(x, y)
    case (.bigInt(let x), .bigInt(let y)): return x == y
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where !pythonEqual(p, q) { return false }
        return true
    case (.dict(let x), .dict(let y)):
        guard x.count == y.count else { return false }
        for (k, v) in x.pairs {
            guard let w = y.lookup(k), pythonEqual(v, w) else { return false }
        }
        return true
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.callable(let x), .callable(let y)): return x === y
    case (.loop(let x), .loop(let y)): return x === y
    default:
        guard let x = Number(a), let y = Number(b) else { return false }
        switch (x, y) {
        case (.int(let i), .int(let j)): return i == j
        default: return x.double == y.double
        }
    }
}

extension Interpreter {
    /// `a == b`, charged by the bytes and elements compared (two values can share big parts many times, so
    /// a comparison can touch far more than the memory they use).
    func equal(_ a: Value, _ b: Value) throws(GLMError) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)), (.string(let x), .markup(let y)),
             (.markup(let x), .string(let y)), (.markup(let x), .markup(let y)):
            try charge(min(x.utf8.count, y.utf8.count))
            return pythonStringsEqual(x, y)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) {
                try charge(Interpreter.elementBytes)
                if !(try equal(p, q)) { return false }
            }
            return true
        case (.dict(let x), .dict(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x.pairs {
                try charge(Interpreter.elementBytes)
                try chargeKey(k)
                guard let w = y.lookup(k), try equal(v, w) else { return false }
            }
            return true
        default:
            // The remaining cases compare scalars or identities.
            return pythonEqual(a, b)
        }
    }

    /// Charges hashing or comparing `key` for a dict lookup: its bytes, and every element of a tuple key.
    func chargeKey(_ key: Value) throws(GLMError) {
        switch key {
        case .string(let s), .markup(let s): try charge(s.utf8.count)
        case .bigInt(let t): try charge(t.utf8.count)
        case .tuple(let items):
            for item in items {
                try charge(Interpreter.elementBytes)
                try chargeKey(item)
            }
        default: break
        }
    }

    func negate(_ v: Value) throws(GLMError) -> Value {
        try requireDefined(v)
        switch v {
        case .int(let i):
            guard i != Int.min else { return .float(-Double(i)) }
            return .int(-i)
        case .bool(let b): return .int(b ? -1 : 0)
        case .float(let d): return .float(-d)
        case .bigInt(let t): return .bigInt(t.hasPrefix("-") ? String(t.dropFirst()) : "-" + t)
        default: throw typeError("bad operand type for unary -: '\(v.typeName)'")
        }
    }

    private func unsupported(_ symbol: String, _ a: Value, _ b: Value) -> GLMError {
        typeError("unsupported operand type(s) for \(symbol): '\(a.typeName)' and '\(b.typeName)'")
    }

    private func overflow() -> GLMError {
        error("OverflowError", "integer result does not fit in 64 bits (Python would use an unbounded int)")
    }

    func binary(_ op: BinaryOperator, _ a: Value, _ b: Value) throws(GLMError) -> Value {
        try requireDefined(a)
        try requireDefined(b)
        switch op {
        case .add: return try add(a, b)
        case .subtract:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("-", a, b) }
            if case .int(let i) = x, case .int(let j) = y {
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            }
            return .float(x.double - y.double)
        case .multiply: return try multiply(a, b)
        case .divide:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("/", a, b) }
            if y.double == 0 { throw error("ZeroDivisionError", "division by zero") }
            return .float(x.double / y.double)
        case .floorDivide:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("//", a, b) }
            if case .int(let i) = x, case .int(let j) = y {
                if j == 0 { throw error("ZeroDivisionError", "integer division or modulo by zero") }
                if i == Int.min && j == -1 { throw overflow() }
                let q = i / j
                return .int((i % j != 0 && (i < 0) != (j < 0)) ? q - 1 : q)
            }
            if y.double == 0 { throw error("ZeroDivisionError", "float floor division by zero") }
            return .float((x.double / y.double).rounded(.down))
        case .modulo:
            if let format = a.stringValue { return .string(try percentFormat(format, b)) }
            guard let x = Number(a), let y = Number(b) else { throw unsupported("%", a, b) }
            if case .int(let i) = x, case .int(let j) = y {
                if j == 0 { throw error("ZeroDivisionError", "integer modulo by zero") }
                if j == -1 { return .int(0) }
                let r = i % j
                return .int(r != 0 && (r < 0) != (j < 0) ? r + j : r)
            }
            if y.double == 0 { throw error("ZeroDivisionError", "float modulo") }
            var r = fmod(x.double, y.double)
            if r != 0 && (r < 0) != (y.double < 0) { r += y.double }
            return .float(r)
        case .power:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("** or pow()", a, b) }
            if case .int(var base) = x, case .int(var exponent) = y, exponent >= 0 {
                var result = 1
                while exponent > 0 {
                    if exponent & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    exponent >>= 1
                    if exponent > 0 {
                        let (sq, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = sq
                    }
                }
                return .int(result)
            }
            if x.double == 0 && y.double < 0 { throw error("ZeroDivisionError", "0.0 cannot be raised to a negative power") }
            return .float(pow(x.double, y.double))
        }
    }

    private func add(_ a: Value, _ b: Value) throws(GLMError) -> Value {
        if let x = a.stringValue, let y = b.stringValue {
            // Markup + str escapes the plain operand (markupsafe's __add__/__radd__).
            switch (a, b) {
            case (.string, .string):
                try reserve(bytes: Interpreter.sum(x.utf8.count, y.utf8.count))
                return .string(x + y)
            case (.markup, .string):
                let escaped = try escape(y)
                try reserve(bytes: Interpreter.sum(x.utf8.count, escaped.utf8.count))
                return .markup(x + escaped)
            case (.string, .markup):
                let escaped = try escape(x)
                try reserve(bytes: Interpreter.sum(escaped.utf8.count, y.utf8.count))
                return .markup(escaped + y)
            default:
                try reserve(bytes: Interpreter.sum(x.utf8.count, y.utf8.count))
                return .markup(x + y)
            }
        }
        switch (a, b) {
        case (.list(let x), .list(let y)):
            try reserve(elements: Interpreter.sum(x.count, y.count))
            return .list(x + y)
        case (.tuple(let x), .tuple(let y)):
            try reserve(elements: Interpreter.sum(x.count, y.count))
            return .tuple(x + y)
        case (.string, _), (.markup, _):
            throw typeError("can only concatenate str (not \"\(b.typeName)\") to str")
        case (.list, _):
            throw typeError("can only concatenate list (not \"\(b.typeName)\") to list")
        case (.tuple, _):
            throw typeError("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
        default:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("+", a, b) }
            if case .int(let i) = x, case .int(let j) = y {
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            }
            return .float(x.double + y.double)
        }
    }

    private func multiply(_ a: Value, _ b: Value) throws(GLMError) -> Value {
        func repeatCount(_ v: Value) -> Int? {
            switch v {
            case .int(let i): return max(0, i)
            case .bool(let flag): return flag ? 1 : 0
            default: return nil
            }
        }
        switch (a, b) {
        case (.string(let s), _), (.markup(let s), _):
            guard let n = repeatCount(b) else { throw typeError("can't multiply sequence by non-int of type '\(b.typeName)'") }
            try reserve(bytes: Interpreter.product(s.utf8.count, n))
            let r = repeatedText(s, count: n)
            if case .markup = a { return .markup(r) }
            return .string(r)
        case (_, .string), (_, .markup):
            if repeatCount(a) != nil { return try multiply(b, a) }
            throw typeError("can't multiply sequence by non-int of type '\(a.typeName)'")
        case (.list(let items), _), (.tuple(let items), _):
            guard let n = repeatCount(b) else { throw typeError("can't multiply sequence by non-int of type '\(b.typeName)'") }
            try reserve(elements: Interpreter.product(items.count, n))
            var result: [Value] = []
            result.reserveCapacity(items.count * n)
            for _ in 0..<n { result += items }
            if case .tuple = a { return .tuple(result) }
            return .list(result)
        case (_, .list), (_, .tuple):
            if repeatCount(a) != nil { return try multiply(b, a) }
            throw typeError("can't multiply sequence by non-int of type '\(a.typeName)'")
        default:
            guard let x = Number(a), let y = Number(b) else { throw unsupported("*", a, b) }
            if case .int(let i) = x, case .int(let j) = y {
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow() }
                return .int(r)
            }
            return .float(x.double * y.double)
        }
    }

    /// Python's ordering (`<`); -1, 0 or 1. Mixed types other than numbers are a TypeError.
    func pythonCompare(_ a: Value, _ b: Value, symbol: String = "<") throws(GLMError) -> Int {
        try requireDefined(a)
        try requireDefined(b)
        if let x = a.stringValue, let y = b.stringValue {
            // An equality pass, then an ordering pass over code points.
            try charge(Interpreter.product(3, min(x.utf8.count, y.utf8.count)))
            if pythonStringsEqual(x, y) { return 0 }
            return pythonStringLess(x, y) ? -1 : 1
        }
        if let x = Number(a), let y = Number(b) {
            if case .int(let i) = x, case .int(let j) = y { return i < j ? -1 : (i == j ? 0 : 1) }
            return x.double < y.double ? -1 : (x.double == y.double ? 0 : 1)
        }
        switch (a, b) {
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) {
                try charge(Interpreter.elementBytes)
                if !(try equal(p, q)) { return try pythonCompare(p, q, symbol: symbol) }
            }
            return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
        default:
            throw typeError("'\(symbol)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    func compare(_ op: CompareOperator, _ a: Value, _ b: Value) throws(GLMError) -> Bool {
        switch op {
        case .equal: return try equal(a, b)
        case .notEqual: return !(try equal(a, b))
        case .less: return try pythonCompare(a, b, symbol: "<") < 0
        case .lessEqual: return try pythonCompare(a, b, symbol: "<=") <= 0
        case .greater: return try pythonCompare(a, b, symbol: ">") > 0
        case .greaterEqual: return try pythonCompare(a, b, symbol: ">=") >= 0
        case .contains: return try contains(b, a)
        case .notContains: return !(try contains(b, a))
        }
    }

    /// `item in container`.
    func contains(_ container: Value, _ item: Value) throws(GLMError) -> Bool {
        switch container {
        case .string(let s), .markup(let s):
            guard let needle = item.stringValue else {
                if case .undefined(let u) = item { throw undefinedError(u) }
                throw typeError("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            // Both copied to bytes, then a linear search.
            try charge(Interpreter.sum(Interpreter.product(2, s.utf8.count), Interpreter.product(2, needle.utf8.count)))
            return pythonContains(s, needle)
        case .list(let items), .tuple(let items):
            return try containsEqual(items, item)
        case .dict(let d):
            try chargeKey(item)
            if HashKey(item) == nil {
                if case .undefined = item { return false }
                throw typeError("unhashable type: '\(item.typeName)'")
            }
            return d.contains(item)
        case .undefined:
            return false
        case .loop(let state):
            return try containsEqual(state.items, item)
        case .iterator(let it):
            return try containsEqual(it.items, item)
        default:
            throw typeError("argument of type '\(container.typeName)' is not iterable")
        }
    }

    private func containsEqual(_ items: [Value], _ item: Value) throws(GLMError) -> Bool {
        for candidate in items {
            try charge(Interpreter.elementBytes)
            if try equal(candidate, item) { return true }
        }
        return false
    }
}

/// markupsafe's `escape`: `&`, `<`, `>`, `"`, `'`.
func htmlEscape(_ s: String) -> String {
    if bytesAll(s, { $0 != 0x26 && $0 != 0x3C && $0 != 0x3E && $0 != 0x22 && $0 != 0x27 }) { return s }
    var out = ""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
