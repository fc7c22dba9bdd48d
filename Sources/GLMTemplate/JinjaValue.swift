import GLMJSON
import GLMSupport

/// A runtime value of the Jinja interpreter. The cases mirror the Python objects jinja2 works with, so that
/// printing, comparing and testing them can follow Python's rules exactly.
enum Value {
    /// jinja2's plain `Undefined`: prints as "", is falsy, iterates as empty, fails on attribute access or arithmetic.
    indirect case undefined(Undefined)
    case none
    case bool(Bool)
    case int(Int)
    /// An integer literal from JSON that does not fit in `Int`, kept as its decimal text (Python ints are unbounded).
    case bigInt(String)
    case float(Double)
    case string(String)
    /// markupsafe's `Markup` (from `|safe`, `|e`): prints as its text; `+` escapes a plain-string operand.
    case markup(String)
    case list([Value])
    case tuple([Value])
    case dict(PyDict)
    case namespace(Namespace)
    case callable(Callable)
    case loop(LoopState)
    /// A lazy Python iterable that is not a list: what `map`, `select`, `reverse`... return (generators) and
    /// `dict.items()` returns (views). They differ from lists where templates can tell: a generator is always
    /// truthy and has no len(), none of them is a `sequence` or JSON-serialisable.
    case iterator(IteratorValue)

    static func undefinedName(_ name: String) -> Value { .undefined(Undefined(name: name)) }

    /// Python's truth value.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .bigInt: return true
        case .float(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .callable, .loop: return true
        case .iterator(let it): return it.kind.isView ? !it.items.isEmpty : true
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .none = self { return true } else { return false } }

    /// The text of a `str` (or `Markup`) value.
    var stringValue: String? {
        switch self {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }

    /// Items of a list or tuple.
    var sequenceItems: [Value]? {
        switch self {
        case .list(let a), .tuple(let a): return a
        default: return nil
        }
    }

    /// The Python type name used in error messages (`type(x).__name__`).
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable(let c): return c.typeName
        case .loop: return "LoopContext"
        case .iterator(let it): return it.kind.rawValue
        }
    }

    /// jinja2's `object_type_repr`, which names the owner in "has no attribute" messages.
    var objectTypeRepr: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }
}

/// The items of a generator or dict view, computed eagerly (filters have no side effects).
struct IteratorValue {
    enum Kind: String {
        case generator
        case listReverseIterator = "list_reverseiterator"
        case dictKeys = "dict_keys"
        case dictValues = "dict_values"
        case dictItems = "dict_items"

        var isView: Bool { self == .dictKeys || self == .dictValues || self == .dictItems }
    }

    let items: [Value]
    let kind: Kind
}

/// What jinja2 remembers about an undefined value, to build its error message only when one is raised.
struct Undefined {
    /// The variable, attribute or key that was missing.
    var name: String
    /// The `objectTypeRepr` of the object it was looked up on; nil for a missing variable.
    var ownerType: String? = nil
    /// True when looked up with a non-string key (`x[0]`): "list object has no element 0".
    var isElement = false
    /// A complete message replacing the generated one (e.g. sandbox refusals).
    var hint: String? = nil
    /// When set, using the value raises a `SecurityError` instead of an `UndefinedError`.
    var isUnsafe = false

    var message: String {
        if let hint { return hint }
        guard let ownerType else { return "\(pythonRepr(name)) is undefined" }
        if isElement { return "\(ownerType) has no element \(name)" }
        return "\(pythonRepr(ownerType)) has no attribute \(pythonRepr(name))"
    }
}

/// A key of a Python dict, normalised as Python hashes it (`1 == 1.0 == True`).
enum HashKey: Hashable {
    case string(String)
    case int(Int)
    case bigInt(String)
    case float(UInt64)
    case none
    case tuple([HashKey])

    init?(_ value: Value) {
        switch value {
        case .string(let s), .markup(let s): self = .string(s)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .bigInt(let t): self = .bigInt(t)
        case .float(let d):
            if d.rounded() == d, abs(d) < 9.2e18 { self = .int(Int(d)) } else { self = .float(d.bitPattern) }
        case .none: self = .none
        case .tuple(let items):
            var keys: [HashKey] = []
            for item in items {
                guard let k = HashKey(item) else { return nil }
                keys.append(k)
            }
            self = .tuple(keys)
        default: return nil
        }
    }
}

/// A Python dict: insertion-ordered, with a hash index only once it is large enough to pay for itself.
/// Entries live in one array so that copying a dict value retains a single buffer.
struct PyDict {
    private var entries: [(key: Value, value: Value)] = []
    private var index: [HashKey: Int]? = nil
    private static let indexThreshold = 12

    init() {}

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var keys: [Value] { entries.map { $0.key } }
    var values: [Value] { entries.map { $0.value } }
    var pairs: [(key: Value, value: Value)] { entries }

    private func position(of key: HashKey) -> Int? {
        if let index { return index[key] }
        for i in entries.indices where HashKey(entries[i].key) == key { return i }
        return nil
    }

    /// Fast path for string keys, the common case (JSON objects, attribute access).
    func position(ofString key: String) -> Int? {
        if let index { return index[.string(key)] }
        for i in entries.indices {
            if case .string(let k) = entries[i].key, k == key { return i }
        }
        return nil
    }

    subscript(string key: String) -> Value? {
        position(ofString: key).map { entries[$0].value }
    }

    /// The value for `key`; nil when missing or when the key is unhashable.
    func lookup(_ key: Value) -> Value? {
        if case .string(let s) = key { return self[string: s] }
        guard let hashKey = HashKey(key), let i = position(of: hashKey) else { return nil }
        return entries[i].value
    }

    func contains(_ key: Value) -> Bool { lookup(key) != nil }

    /// Sets a value; an existing key keeps its position, as in Python. Returns false for an unhashable key.
    @discardableResult
    mutating func set(_ key: Value, _ value: Value) -> Bool {
        guard let hashKey = HashKey(key) else { return false }
        if let i = position(of: hashKey) {
            entries[i].value = value
            return true
        }
        entries.append((key, value))
        if index != nil {
            index?[hashKey] = entries.count - 1
        } else if entries.count > PyDict.indexThreshold {
            var built: [HashKey: Int] = [:]
            for (i, entry) in entries.enumerated() { if let h = HashKey(entry.key) { built[h] = i } }
            index = built
        }
        return true
    }

    mutating func set(string key: String, _ value: Value) {
        if index == nil, position(ofString: key) == nil {
            entries.append((.string(key), value))
            if entries.count > PyDict.indexThreshold { rebuildIndex() }
            return
        }
        set(.string(key), value)
    }

    private mutating func rebuildIndex() {
        var built: [HashKey: Int] = [:]
        for (i, entry) in entries.enumerated() { if let h = HashKey(entry.key) { built[h] = i } }
        index = built
    }
}

/// jinja2's `namespace()`: the one mutable object templates can create (`{% set ns.x = ... %}`).
final class Namespace {
    var attributes = PyDict()
}

/// State of one `{% for %}` loop, exposed to the body as `loop`.
final class LoopState {
    let items: [Value]
    var index0 = 0
    let depth0: Int
    /// For `loop(...)` in a `recursive` loop: renders the loop again over new items.
    let recurse: ((Value) throws(GLMError) -> String)?
    /// What `loop.changed()` last saw.
    var lastChanged: [Value]? = nil

    init(items: [Value], depth0: Int, recurse: ((Value) throws(GLMError) -> String)?) {
        self.items = items
        self.depth0 = depth0
        self.recurse = recurse
    }
}

/// Arguments of a call, as Python passes them.
struct Arguments {
    var positional: [Value] = []
    var keywords: [(String, Value)] = []

    init(_ positional: [Value] = [], keywords: [(String, Value)] = []) {
        self.positional = positional
        self.keywords = keywords
    }

    func keyword(_ name: String) -> Value? {
        for (k, v) in keywords where k == name { return v }
        return nil
    }

    /// The parameter at `index` (counting the positional parameters after the filtered value), or by `name`.
    func value(_ index: Int, _ name: String) -> Value? {
        if index < positional.count { return positional[index] }
        return keyword(name)
    }
}

/// Something a template can call: a macro, a global function, or a bound method of a value.
final class Callable {
    enum Kind {
        case macro(Macro)
        case builtin(String, (Interpreter, Arguments) throws(GLMError) -> Value)
        case method(receiver: Value, name: String)
    }

    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    var typeName: String {
        switch kind {
        case .macro: return "Macro"
        case .builtin: return "function"
        case .method: return "builtin_function_or_method"
        }
    }
}

/// A macro as defined (`{% macro name(args) %}`) together with the scope it closes over.
struct Macro {
    let definition: MacroDefinition
    let closure: Frame
    /// For the `caller` of a `{% call %}` block.
    let isCaller: Bool
}

/// One scope of variables; lookups walk outwards through `parent`. Scopes hold a handful of names, so a
/// linear scan (small-string comparisons) beats hashing.
final class Frame {
    private var entries: [(name: String, value: Value)] = []
    let parent: Frame?

    init(parent: Frame?) { self.parent = parent }

    /// Names set in this scope.
    var count: Int { entries.count }

    func set(_ name: String, _ value: Value) {
        for i in entries.indices where entries[i].name == name {
            entries[i].value = value
            return
        }
        entries.append((name, value))
    }

    /// The variable in this scope only.
    func local(_ name: String) -> Value? {
        for entry in entries where entry.name == name { return entry.value }
        return nil
    }

    func lookup(_ name: String) -> Value? {
        var scanned = 0
        return lookup(name, scanned: &scanned)
    }

    /// The variable, counting in `scanned` the names compared on the way (the interpreter charges them).
    func lookup(_ name: String, scanned: inout Int) -> Value? {
        var frame: Frame? = self
        while let f = frame {
            scanned += f.entries.count
            for entry in f.entries where entry.name == name { return entry.value }
            frame = f.parent
        }
        return nil
    }

    func removeAll() { entries.removeAll() }
}

extension Value {
    /// Converts caller data (JSON) into template values.
    init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .integer(let text): self = Int(text).map { .int($0) } ?? .bigInt(text)
        case .double(let d): self = .float(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .list(items.map { Value(json: $0) })
        case .object(let object):
            var dict = PyDict()
            for (k, v) in object { dict.set(string: k, Value(json: v)) }
            self = .dict(dict)
        }
    }
}
