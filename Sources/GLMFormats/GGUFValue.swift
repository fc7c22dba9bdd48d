import GLMSupport

/// The type tag of a GGUF metadata value, as stored in the file (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes one value of this type occupies, or nil for the variable-length string and array.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one element can take: lets a claimed count be checked against the bytes left
    /// before anything is walked or allocated.
    var minimumSize: Int {
        switch self {
        case .string: return 8          // the u64 length of an empty string
        case .array: return 12          // u32 element type + u64 count of an empty array
        default: return fixedSize ?? 1
        }
    }

    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}

/// One GGUF metadata value. Scalars are decoded; arrays stay in the mapped file (a 150k-token vocabulary
/// is read element by element by whoever needs it, never copied into Swift values up front).
public enum GGUFValue: Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool)
    case string(String)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// The value as an integer if it is one of the integer types and fits in `Int`.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Double for either float type (and integers, exactly where possible).
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return intValue.map { Double($0) }
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: GGUFArray? { if case .array(let a) = self { return a } else { return nil } }
}

/// A GGUF array still inside the mapped file. Its extent was validated when the file was opened,
/// so reading elements only re-walks bytes already known to lie inside the file.
public struct GGUFArray: Sendable {
    public let elementType: GGUFValueType
    public let count: Int
    /// Offset of the first element in the file, and the bytes all elements occupy.
    public let offset: Int
    public let byteCount: Int
    let file: MappedFile
    let key: String

    /// Calls `body` with the raw UTF-8 bytes of each string element, in order (no copies).
    public func forEachStringBytes(_ body: (Int, UnsafeRawBufferPointer) throws(GLMError) -> Void) throws(GLMError) {
        guard elementType == .string else { throw typeError(expected: "string") }
        // The extent was validated when the file was opened; the checks here only guard that invariant.
        let bytes = file.bytes
        let end = offset + byteCount
        var position = offset
        for i in 0..<count {
            guard position + 8 <= end else { throw truncated(i) }
            let length = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self).littleEndian
            position += 8
            guard length <= UInt64(end - position) else { throw truncated(i) }
            let next = position + Int(length)
            try body(i, UnsafeRawBufferPointer(rebasing: bytes[position..<next]))
            position = next
        }
    }

    private func truncated(_ i: Int) -> GLMError {
        .format("'\(file.path)': GGUF string \(key)[\(i)] runs past the end of its array")
    }

    /// The elements as Swift strings (invalid UTF-8 is an error naming the element).
    public func strings() throws(GLMError) -> [String] {
        var result: [String] = []
        result.reserveCapacity(count)
        try forEachStringBytes { (i, bytes) throws(GLMError) in
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw .format("'\(file.path)': GGUF string \(key)[\(i)] is not valid UTF-8")
            }
            result.append(s)
        }
        return result
    }

    /// Integer elements (any of the eight integer types) as Int; a uint64 above Int.max is an error.
    public func integers() throws(GLMError) -> [Int] {
        let bytes = try file.slice(offset: offset, count: byteCount)
        func load<T: FixedWidthInteger>(_: T.Type) -> [Int] {
            (0..<count).map { Int(truncatingIfNeeded: T(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
        }
        switch elementType {
        case .uint8: return load(UInt8.self)
        case .int8: return load(Int8.self)
        case .uint16: return load(UInt16.self)
        case .int16: return load(Int16.self)
        case .uint32: return load(UInt32.self)
        case .int32: return load(Int32.self)
        case .int64: return load(Int64.self)
        case .uint64:
            let values = load(UInt64.self)
            if let bad = values.firstIndex(where: { $0 < 0 }) {
                throw .format("'\(file.path)': GGUF integer \(key)[\(bad)] does not fit in 64-bit signed range")
            }
            return values
        default: throw typeError(expected: "integer")
        }
    }

    /// Float elements (float32/float64) as Double.
    public func doubles() throws(GLMError) -> [Double] {
        guard elementType == .float32 || elementType == .float64 else { throw typeError(expected: "float") }
        var result: [Double] = []
        result.reserveCapacity(count)
        var reader = GGUFReader(file: file, position: offset)
        for i in 0..<count {
            if let v = try reader.readScalar(elementType, what: "\(key)[\(i)]").doubleValue { result.append(v) }
        }
        return result
    }

    /// Every element decoded as a `GGUFValue` (nested arrays stay lazy).
    public func values() throws(GLMError) -> [GGUFValue] {
        var result: [GGUFValue] = []
        result.reserveCapacity(count)
        var reader = GGUFReader(file: file, position: offset)
        for i in 0..<count {
            result.append(try reader.readValue(elementType, what: "\(key)[\(i)]", depth: 1))
        }
        return result
    }

    func typeError(expected: String) -> GLMError {
        .format("'\(file.path)': GGUF key '\(key)' is an array of \(elementType), expected \(expected) elements")
    }
}

/// A bounds-checked little-endian cursor over a mapped GGUF file.
struct GGUFReader {
    let file: MappedFile
    var position: Int

    /// Nested arrays deeper than this are rejected (real files nest at most once).
    static let maxArrayDepth = 8

    func error(_ what: @autoclosure () -> String) -> GLMError {
        .format("'\(file.path)': GGUF \(what()) at byte \(position)")
    }

    mutating func take(_ length: Int, what: @autoclosure () -> String) throws(GLMError) -> UnsafeRawBufferPointer {
        guard length >= 0, length <= file.count - position else {
            throw error("truncated: \(what()) needs \(length) bytes but only \(file.count - position) remain")
        }
        let bytes = try file.slice(offset: position, count: length)
        position += length
        return bytes
    }

    mutating func readU32(what: @autoclosure () -> String) throws(GLMError) -> UInt32 {
        let b = try take(4, what: what())
        return b.loadUnaligned(as: UInt32.self).littleEndian
    }

    mutating func readU64(what: @autoclosure () -> String) throws(GLMError) -> UInt64 {
        let b = try take(8, what: what())
        return b.loadUnaligned(as: UInt64.self).littleEndian
    }

    /// A u64 count checked against the bytes left: `count` elements of at least `minimumSize` bytes each
    /// must fit in the rest of the file, so a hostile count fails here instead of looping or allocating.
    mutating func readCount(minimumSize: Int, what: @autoclosure () -> String) throws(GLMError) -> Int {
        let raw = try readU64(what: "\(what()) count")
        let remaining = file.count - position
        guard raw <= UInt64(remaining / max(minimumSize, 1)) else {
            throw error("\(what()) claims \(raw) elements, more than the \(remaining) bytes left can hold")
        }
        return Int(raw)
    }

    mutating func readStringBytes(what: @autoclosure () -> String) throws(GLMError) -> UnsafeRawBufferPointer {
        let length = try readU64(what: "\(what()) length")
        guard length <= UInt64(file.count - position) else {
            throw error("truncated: \(what()) claims \(length) bytes but only \(file.count - position) remain")
        }
        return try take(Int(length), what: what())
    }

    mutating func readString(what: @autoclosure () -> String) throws(GLMError) -> String {
        let start = position
        let bytes = try readStringBytes(what: what())
        guard let s = String(validating: bytes, as: UTF8.self) else {
            position = start
            throw error("\(what()) is not valid UTF-8")
        }
        return s
    }

    mutating func readType(what: @autoclosure () -> String) throws(GLMError) -> GGUFValueType {
        let raw = try readU32(what: "\(what()) type")
        guard let type = GGUFValueType(rawValue: raw) else { throw error("\(what()) has unknown value type \(raw)") }
        return type
    }

    mutating func readScalar(_ type: GGUFValueType, what: @autoclosure () -> String) throws(GLMError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try take(1, what: what())[0])
        case .int8: return .int8(Int8(bitPattern: try take(1, what: what())[0]))
        case .uint16: return .uint16(try take(2, what: what()).loadUnaligned(as: UInt16.self).littleEndian)
        case .int16: return .int16(try take(2, what: what()).loadUnaligned(as: Int16.self).littleEndian)
        case .uint32: return .uint32(try readU32(what: what()))
        case .int32: return .int32(Int32(bitPattern: try readU32(what: what())))
        case .uint64: return .uint64(try readU64(what: what()))
        case .int64: return .int64(Int64(bitPattern: try readU64(what: what())))
        case .float32: return .float32(Float(bitPattern: try readU32(what: what())))
        case .float64: return .float64(Double(bitPattern: try readU64(what: what())))
        case .bool:
            let b = try take(1, what: what())[0]
            guard b <= 1 else { position -= 1; throw error("\(what()) is a bool with byte value \(b)") }
            return .bool(b == 1)
        case .string: return .string(try readString(what: what()))
        case .array: throw error("\(what()): an array is not a scalar")
        }
    }

    /// Reads a value of `type`; arrays are validated (every element walked, bounded depth) and kept lazy.
    mutating func readValue(_ type: GGUFValueType, what: String, depth: Int) throws(GLMError) -> GGUFValue {
        guard type == .array else { return try readScalar(type, what: what) }
        guard depth < GGUFReader.maxArrayDepth else {
            throw error("\(what): arrays nested deeper than \(GGUFReader.maxArrayDepth) levels")
        }
        let elementType = try readType(what: "\(what) element")
        let count = try readCount(minimumSize: elementType.minimumSize, what: what)
        let start = position
        if let size = elementType.fixedSize {
            _ = try take(count * size, what: "\(what) elements")
            if elementType == .bool {
                let bytes = try file.slice(offset: start, count: count)
                if let bad = bytes.firstIndex(where: { $0 > 1 }) {
                    throw .format("'\(file.path)': GGUF \(what)[\(bad)] is a bool with byte value \(bytes[bad])")
                }
            }
        } else {
            for i in 0..<count {
                if elementType == .string {
                    _ = try readStringBytes(what: "\(what)[\(i)]")
                } else {
                    _ = try readValue(.array, what: "\(what)[\(i)]", depth: depth + 1)
                }
            }
        }
        let key = what
        return .array(GGUFArray(elementType: elementType, count: count, offset: start,
                                byteCount: position - start, file: file, key: key))
    }
}
