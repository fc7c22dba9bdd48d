import GLMJSON
import GLMSupport
#if canImport(Glibc)
import Glibc
#endif

// Python's two string-formatting mini-languages: `fmt % args` (printf style) and `str.format`.

/// C's snprintf for one double, which Python's own float formatting matches for the f/e/g conversions.
func formatDouble(_ value: Double, flags: String, width: Int?, precision: Int, conversion: Character) -> String {
    if value.isNaN || value.isInfinite {
        var text = value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf")
        if value.isInfinite && value > 0 && flags.contains("+") { text = "+inf" } else if value.isInfinite && value > 0 && flags.contains(" ") { text = " inf" }
        if conversion.isUppercase { text = text.uppercased() }
        return pad(text, width: width ?? 0, left: flags.contains("-"), fill: " ")
    }
    var format = "%" + flags.filter { $0 != "," }
    if let width { format += String(width) }
    format += "." + String(min(max(precision, 0), 200)) + String(conversion)
    var buffer = [CChar](repeating: 0, count: 512 + max(0, min(width ?? 0, 1 << 20)))
    let count = buffer.count
    let written = withVaList([value]) { args in
        buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, count, format, args) }
    }
    guard written >= 0 else { return "" }
    let bytes = buffer.prefix(Int(min(Int32(count - 1), written))).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

func pad(_ text: String, width: Int, left: Bool, fill: String) -> String {
    let length = pythonLength(text)
    guard width > length else { return text }
    let padding = repeatedText(fill, count: width - length)
    return left ? text + padding : padding + text
}

extension Interpreter {
    private func formatInteger(_ v: Value, conversion: Character) throws(GLMError) -> (negative: Bool, digits: String) {
        var magnitude: String
        var negative = false
        switch v {
        case .int(let i):
            negative = i < 0
            let m = i.magnitude
            switch conversion {
            case "x": magnitude = String(m, radix: 16)
            case "X": magnitude = String(m, radix: 16).uppercased()
            case "o": magnitude = String(m, radix: 8)
            case "b": magnitude = String(m, radix: 2)
            default: magnitude = String(m)
            }
        case .bool(let b): magnitude = b ? "1" : "0"
        case .float(let d):
            guard d.isFinite else { throw error("OverflowError", "cannot convert float infinity or NaN to integer") }
            guard let truncated = Int(exactly: d.rounded(.towardZero)) else {
                throw error("OverflowError", "float too large to format as an integer here")
            }
            return try formatInteger(.int(truncated), conversion: conversion)
        case .bigInt(let t):
            negative = t.hasPrefix("-")
            magnitude = negative ? String(t.dropFirst()) : t
        default:
            throw typeError("%\(conversion) format: a real number is required, not \(v.typeName)")
        }
        return (negative, magnitude)
    }

    /// `format % args`.
    func percentFormat(_ format: String, _ args: Value) throws(GLMError) -> String {
        var positional: [Value] = []
        var mapping: PyDict? = nil
        switch args {
        case .tuple(let items): positional = items
        case .dict(let d): mapping = d; positional = [args]
        default: positional = [args]
        }
        var next = 0
        func take() throws(GLMError) -> Value {
            guard next < positional.count else { throw typeError("not enough arguments for format string") }
            next += 1
            return positional[next - 1]
        }
        // Decoded to code points; the output is charged as it is written.
        try charge(Interpreter.product(2, format.utf8.count))
        let chars = Array(format.unicodeScalars)
        var out = ""
        var i = 0
        var usedMapping = false
        while i < chars.count {
            let c = chars[i]
            if c != "%" { out.unicodeScalars.append(c); i += 1; continue }
            i += 1
            guard i < chars.count else { throw error("ValueError", "incomplete format") }
            var key: String? = nil
            if chars[i] == "(" {
                var depth = 1
                var j = i + 1
                while j < chars.count && depth > 0 {
                    if chars[j] == "(" { depth += 1 } else if chars[j] == ")" { depth -= 1 }
                    j += 1
                }
                guard depth == 0 else { throw error("ValueError", "incomplete format key") }
                key = String(String.UnicodeScalarView(chars[(i + 1)..<(j - 1)]))
                i = j
            }
            var flags = ""
            while i < chars.count, "-+ #0".unicodeScalars.contains(chars[i]) { flags.unicodeScalars.append(chars[i]); i += 1 }
            var width: Int? = nil
            if i < chars.count && chars[i] == "*" {
                guard case .int(let w) = try take() else { throw typeError("* wants int") }
                // As CPython: a negative `*` width left-justifies. Bounded before any padding is built.
                try reserve(bytes: Int(clamping: w.magnitude))
                if w < 0 { flags += "-" }
                width = Int(clamping: w.magnitude)
                i += 1
            } else {
                while i < chars.count, let d = chars[i].properties.numericType != nil ? Int(String(chars[i])) : nil {
                    width = (width ?? 0) * 10 + d
                    if (width ?? 0) > limits.maxOutputBytes { throw sizeExceeded(width ?? 0) }
                    i += 1
                }
            }
            var precision: Int? = nil
            if i < chars.count && chars[i] == "." {
                i += 1
                precision = 0
                if i < chars.count && chars[i] == "*" {
                    guard case .int(let p) = try take() else { throw typeError("* wants int") }
                    // As CPython: a negative `*` precision counts as 0. Bounded like a written precision.
                    precision = min(max(p, 0), 1 << 20)
                    i += 1
                } else {
                    while i < chars.count, let d = Int(String(chars[i])) {
                        precision = min((precision ?? 0) * 10 + d, 1 << 20)
                        i += 1
                    }
                }
            }
            while i < chars.count, "hlL".unicodeScalars.contains(chars[i]) { i += 1 }
            guard i < chars.count else { throw error("ValueError", "incomplete format") }
            let conversion = Character(chars[i])
            i += 1
            if conversion == "%" { out += "%"; continue }
            let value: Value
            if let key {
                guard let mapping else { throw typeError("format requires a mapping") }
                guard let v = mapping[string: key] else { throw error("KeyError", pythonRepr(key)) }
                value = v
                usedMapping = true
            } else {
                value = try take()
            }
            try requireDefined(value)
            let left = flags.contains("-")
            var text: String
            switch conversion {
            case "s": text = try str(value)
                if let precision { text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(precision))) }
            case "r", "a": text = try repr(value)
                if let precision { text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(precision))) }
            case "d", "i", "u", "x", "X", "o":
                let (negative, digitsRaw) = try formatInteger(value, conversion: conversion)
                var digits = digitsRaw
                if let precision, digits.count < precision { digits = repeatedText("0", count: precision - digits.count) + digits }
                if flags.contains("#") {
                    if conversion == "x" { digits = "0x" + digits } else if conversion == "X" { digits = "0X" + digits } else if conversion == "o" { digits = "0o" + digits }
                }
                let sign = negative ? "-" : (flags.contains("+") ? "+" : (flags.contains(" ") ? " " : ""))
                if flags.contains("0") && !left, let width, width > sign.count + digits.count {
                    digits = repeatedText("0", count: width - sign.count - digits.count) + digits
                }
                text = sign + digits
            case "f", "F", "e", "E", "g", "G":
                guard let number = Number(value) else { throw typeError("must be real number, not \(value.typeName)") }
                text = formatDouble(number.double, flags: flags, width: width, precision: precision ?? 6, conversion: conversion)
            case "c":
                switch value {
                case .int(let code):
                    guard let scalar = Unicode.Scalar(UInt32(clamping: max(0, code))) else { throw error("OverflowError", "%c arg not in range(0x110000)") }
                    text = String(scalar)
                case .string(let s) where s.unicodeScalars.count == 1: text = s
                default: throw typeError("%c requires int or char")
                }
            default:
                throw error("ValueError", "unsupported format character '\(conversion)'")
            }
            try reserve(bytes: max(width ?? 0, text.utf8.count))
            try append(pad(text, width: width ?? 0, left: left, fill: " "), to: &out)
        }
        if mapping == nil && next < positional.count || (mapping != nil && !usedMapping && next == 0 && positional.count > 1) {
            throw typeError("not all arguments converted during string formatting")
        }
        return out
    }

    /// `str.format(*args, **kwargs)` with the format-spec mini-language for strings and numbers.
    func strFormat(_ format: String, _ args: Arguments) throws(GLMError) -> String {
        // Decoded to code points; the output is charged as it is written.
        try charge(Interpreter.product(2, format.utf8.count))
        let chars = Array(format.unicodeScalars)
        var out = ""
        var i = 0
        var autoIndex = 0
        while i < chars.count {
            let c = chars[i]
            if c == "}" {
                guard i + 1 < chars.count, chars[i + 1] == "}" else { throw error("ValueError", "Single '}' encountered in format string") }
                out += "}"
                i += 2
                continue
            }
            if c != "{" { out.unicodeScalars.append(c); i += 1; continue }
            if i + 1 < chars.count && chars[i + 1] == "{" { out += "{"; i += 2; continue }
            var j = i + 1
            var depth = 1
            while j < chars.count {
                if chars[j] == "{" { depth += 1 } else if chars[j] == "}" { depth -= 1; if depth == 0 { break } }
                j += 1
            }
            guard j < chars.count else { throw error("ValueError", "expected '}' before end of string") }
            let field = String(String.UnicodeScalarView(chars[(i + 1)..<j]))
            i = j + 1
            var spec = ""
            var conversion: Character? = nil
            var name = field
            if let colon = field.firstIndex(of: ":") {
                spec = String(field[field.index(after: colon)...])
                name = String(field[..<colon])
            }
            if let bang = name.firstIndex(of: "!") {
                conversion = name[name.index(after: bang)...].first
                name = String(name[..<bang])
            }
            // The first part names the argument; `.attr` and `[key]` parts follow.
            var headEnd = name.startIndex
            while headEnd < name.endIndex && name[headEnd] != "." && name[headEnd] != "[" { headEnd = name.index(after: headEnd) }
            let head = String(name[..<headEnd])
            var value: Value
            if head.isEmpty {
                guard autoIndex < args.positional.count else { throw error("IndexError", "Replacement index \(autoIndex) out of range for positional args tuple") }
                value = args.positional[autoIndex]
                autoIndex += 1
            } else if let index = Int(head), index >= 0 {
                guard index < args.positional.count else { throw error("IndexError", "Replacement index \(index) out of range for positional args tuple") }
                value = args.positional[index]
            } else {
                guard let v = args.keyword(head) else { throw error("KeyError", pythonRepr(head)) }
                value = v
            }
            var rest = name[headEnd...]
            while let first = rest.first {
                if first == "." {
                    rest = rest.dropFirst()
                    let end = rest.firstIndex { $0 == "." || $0 == "[" } ?? rest.endIndex
                    value = try getAttribute(value, String(rest[..<end]))
                    rest = rest[end...]
                } else {
                    rest = rest.dropFirst()
                    guard let close = rest.firstIndex(of: "]") else { throw error("ValueError", "Missing ']' in format string") }
                    let key = String(rest[..<close])
                    value = try getItem(value, Int(key).map { .int($0) } ?? .string(key))
                    rest = rest[rest.index(after: close)...]
                }
            }
            if conversion == "r" || conversion == "a" { value = .string(try repr(value)) } else if conversion == "s" { value = .string(try str(value)) }
            try append(try formatSpec(value, spec), to: &out)
        }
        return out
    }

    /// `format(value, spec)`.
    func formatSpec(_ value: Value, _ spec: String) throws(GLMError) -> String {
        if spec.isEmpty { return try str(value) }
        var chars = Array(spec.unicodeScalars)[...]
        var fill = " "
        var align: Unicode.Scalar? = nil
        if chars.count >= 2, "<>=^".unicodeScalars.contains(chars[chars.startIndex + 1]) {
            fill = String(chars[chars.startIndex])
            align = chars[chars.startIndex + 1]
            chars = chars.dropFirst(2)
        } else if let first = chars.first, "<>=^".unicodeScalars.contains(first) {
            align = first
            chars = chars.dropFirst()
        }
        var sign = "-"
        if let first = chars.first, "+- ".unicodeScalars.contains(first) { sign = String(first); chars = chars.dropFirst() }
        var alternate = false
        if chars.first == "#" { alternate = true; chars = chars.dropFirst() }
        if chars.first == "0" && align == nil { fill = "0"; align = "="; chars = chars.dropFirst() }
        var width = 0
        while let first = chars.first, let d = Int(String(first)) {
            width = width * 10 + d
            if width > limits.maxOutputBytes { throw sizeExceeded(width) }
            chars = chars.dropFirst()
        }
        // The padding repeats the fill character (up to 4 bytes) up to `width` times.
        try reserve(bytes: Interpreter.product(width, fill.utf8.count))
        var grouping: String? = nil
        if let first = chars.first, first == "," || first == "_" { grouping = String(first); chars = chars.dropFirst() }
        var precision: Int? = nil
        if chars.first == "." {
            chars = chars.dropFirst()
            var p = 0
            while let first = chars.first, let d = Int(String(first)) { p = min(p * 10 + d, 1 << 20); chars = chars.dropFirst() }
            precision = p
        }
        let type = chars.first.map { Character($0) }
        if chars.count > 1 { throw error("ValueError", "Invalid format specifier '\(spec)' for object of type '\(value.typeName)'") }

        func aligned(_ body: String, signText: String, defaultAlign: Unicode.Scalar) -> String {
            let total = pythonLength(signText) + pythonLength(body)
            guard width > total else { return signText + body }
            let padding = width - total
            switch align ?? defaultAlign {
            case "<": return signText + body + repeatedText(fill, count: padding)
            case "^": return repeatedText(fill, count: padding / 2) + signText + body + repeatedText(fill, count: padding - padding / 2)
            case "=": return signText + repeatedText(fill, count: padding) + body
            default: return repeatedText(fill, count: padding) + signText + body
            }
        }
        func grouped(_ digits: String) -> String {
            guard let grouping else { return digits }
            var out: [Character] = []
            for (k, ch) in digits.reversed().enumerated() {
                if k > 0 && k % 3 == 0 { out.append(Character(grouping)) }
                out.append(ch)
            }
            return String(out.reversed())
        }

        switch value {
        case .string(let s), .markup(let s):
            guard type == nil || type == "s" else { throw error("ValueError", "Unknown format code '\(type.map(String.init) ?? "")' for object of type 'str'") }
            var text = s
            if let precision { text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(precision))) }
            return aligned(text, signText: "", defaultAlign: "<")
        case .int, .bool, .bigInt, .float:
            let isFloat: Bool
            if case .float = value { isFloat = true } else { isFloat = false }
            let useFloat = isFloat || (type.map { "eEfFgG%".contains($0) } ?? false)
            if !useFloat {
                if case .bool(let b) = value, type == nil { return aligned(b ? "True" : "False", signText: "", defaultAlign: "<") }
                let conversion: Character = type == "n" || type == nil ? "d" : (type ?? "d")
                if conversion == "c" {
                    guard case .int(let code) = value, let scalar = Unicode.Scalar(UInt32(clamping: max(0, code))) else { throw error("ValueError", "%c arg not in range") }
                    return aligned(String(scalar), signText: "", defaultAlign: ">")
                }
                guard "dxXob".contains(conversion) else { throw error("ValueError", "Unknown format code '\(conversion)' for object of type 'int'") }
                let (negative, digits) = try formatInteger(value, conversion: conversion)
                var body = grouped(digits)
                if alternate && conversion != "d" { body = "0" + (conversion == "X" ? "X" : String(conversion)) + body }
                let signText = negative ? "-" : (sign == "+" ? "+" : (sign == " " ? " " : ""))
                return aligned(body, signText: signText, defaultAlign: ">")
            }
            guard let number = Number(value) else { return try str(value) }
            var d = number.double
            var text: String
            switch type {
            case nil:
                text = precision == nil ? PythonFloat.repr(abs(d)) : formatDouble(abs(d), flags: "", width: nil, precision: max(precision ?? 0, 1), conversion: "g")
                if precision != nil, !text.contains("."), !text.contains("e"), !text.contains("n") { text += ".0" }
            case "%":
                d *= 100
                text = formatDouble(abs(d), flags: alternate ? "#" : "", width: nil, precision: precision ?? 6, conversion: "f") + "%"
            default:
                text = formatDouble(abs(d), flags: alternate ? "#" : "", width: nil, precision: precision ?? 6, conversion: type ?? "f")
            }
            if grouping != nil {
                let intEnd = text.firstIndex { !$0.isNumber } ?? text.endIndex
                text = grouped(String(text[..<intEnd])) + text[intEnd...]
            }
            let negative = d < 0 || (d == 0 && d.sign == .minus)
            let signText = negative ? "-" : (sign == "+" ? "+" : (sign == " " ? " " : ""))
            return aligned(text, signText: signText, defaultAlign: ">")
        default:
            throw typeError("unsupported format string passed to \(value.typeName).__format__")
        }
    }
}

