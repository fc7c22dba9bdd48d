import GLMSupport

/// A ggml tensor element type: how many elements one block holds and how many bytes that block takes.
public struct GGMLType: Equatable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public let name: String
    public let blockSize: Int
    public let bytesPerBlock: Int

    /// The types this reader can size (ids from ggml.h; ids of removed types are absent).
    public static let known: [UInt32: GGMLType] = {
        let table: [(UInt32, String, Int, Int)] = [
            (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20),
            (6, "Q5_0", 32, 22), (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36),
            (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176),
            (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74),
            (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110),
            (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2),
            (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8), (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2),
            (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17),
        ]
        var map: [UInt32: GGMLType] = [:]
        for (id, name, block, bytes) in table {
            map[id] = GGMLType(rawValue: id, name: name, blockSize: block, bytesPerBlock: bytes)
        }
        return map
    }()

    public var description: String { name }

    public static let f32 = GGMLType(rawValue: 0, name: "F32", blockSize: 1, bytesPerBlock: 4)
    public static let f16 = GGMLType(rawValue: 1, name: "F16", blockSize: 1, bytesPerBlock: 2)
    public static let bf16 = GGMLType(rawValue: 30, name: "BF16", blockSize: 1, bytesPerBlock: 2)
}

/// One tensor's entry in the GGUF header. `dimensions` are in ggml order (fastest-varying first).
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let dimensions: [Int]
    public let typeID: UInt32
    /// The element type, or nil for a type id this reader does not know (the tensor then has no byte range).
    public let type: GGMLType?
    /// Offset relative to the start of the data section.
    public let offset: Int
    /// Bytes of data, or nil when the type is unknown.
    public let byteCount: Int?

    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A GGUF file (versions 2 and 3), memory-mapped. The header, every metadata value and every tensor info
/// are validated against the file size when it is opened; afterwards lookups cannot read out of bounds.
public final class GGUFFile: @unchecked Sendable {
    public static let magic: UInt32 = 0x4655_4747 // "GGUF" little-endian
    public static let defaultAlignment = 32
    /// Limits on what the header may claim (llama.cpp's own: at most 4 dimensions; names are short).
    static let maxDimensions = 4
    static let maxNameLength = 65_536

    public let file: MappedFile
    public let version: UInt32
    /// Metadata keys in file order.
    public let keys: [String]
    /// Where each key/value entry (key, type tag and value) lies in the file, parallel to `keys`: a writer copies
    /// entries verbatim (GGUFWriter), whatever their type.
    public let keyRanges: [Range<Int>]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Where the tensor data section starts (absolute file offset).
    public let dataOffset: Int
    private let values: [String: GGUFValue]
    private let tensorIndex: [String: Int]

    public var path: String { file.path }

    public convenience init(path: String) throws(GLMError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(GLMError) {
        self.file = file
        var reader = GGUFReader(file: file, position: 0)
        let magic = try reader.readU32(what: "magic")
        guard magic == GGUFFile.magic else {
            throw .format("'\(file.path)' is not a GGUF file (magic 0x\(String(magic, radix: 16)), expected 'GGUF')")
        }
        version = try reader.readU32(what: "version")
        guard version == 2 || version == 3 else {
            throw .unsupported("'\(file.path)': GGUF version \(version) is not supported (only 2 and 3)")
        }
        // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
        let tensorCount = try reader.readCount(minimumSize: 24, what: "tensor")
        // A key/value takes at least 8 (key length) + 4 (type) + 1 byte.
        let kvCount = try reader.readCount(minimumSize: 13, what: "metadata key/value")

        var keys: [String] = []
        var keyRanges: [Range<Int>] = []
        var values: [String: GGUFValue] = [:]
        keys.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let entryStart = reader.position
            let key = try reader.readString(what: "metadata key #\(i)")
            let type = try reader.readType(what: "metadata '\(key)'")
            let value = try reader.readValue(type, what: key, depth: 0)
            if values.updateValue(value, forKey: key) != nil {
                throw .format("'\(file.path)': GGUF metadata key '\(key)' appears twice")
            }
            keys.append(key)
            keyRanges.append(entryStart..<reader.position)
        }
        self.keys = keys
        self.keyRanges = keyRanges
        self.values = values

        var alignment = GGUFFile.defaultAlignment
        if let value = values["general.alignment"] {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0, a <= 1 << 20 else {
                throw .format("'\(file.path)': general.alignment must be a power of two, got \(value)")
            }
            alignment = a
        }
        self.alignment = alignment

        var tensors: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        tensors.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try reader.readString(what: "tensor #\(i) name")
            guard name.utf8.count <= GGUFFile.maxNameLength else {
                throw .format("'\(file.path)': GGUF tensor #\(i) name is \(name.utf8.count) bytes long")
            }
            let nDims = try reader.readU32(what: "tensor '\(name)' dimension count")
            guard nDims >= 1, nDims <= GGUFFile.maxDimensions else {
                throw .format("'\(file.path)': GGUF tensor '\(name)' has \(nDims) dimensions (1...4 allowed)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let raw = try reader.readU64(what: "tensor '\(name)' dimension \(d)")
                guard raw <= UInt64(Int.max), case let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw)),
                      !overflow, product <= Int(Int32.max) * 1024 else {
                    throw .format("'\(file.path)': GGUF tensor '\(name)' dimension \(d) = \(raw) is out of range")
                }
                elements = product
                dims.append(Int(raw))
            }
            let typeID = try reader.readU32(what: "tensor '\(name)' type")
            let offsetRaw = try reader.readU64(what: "tensor '\(name)' offset")
            guard offsetRaw <= UInt64(file.count) else {
                throw .format("'\(file.path)': GGUF tensor '\(name)' offset \(offsetRaw) is past the end of the file")
            }
            let offset = Int(offsetRaw)
            guard offset % alignment == 0 else {
                throw .format("'\(file.path)': GGUF tensor '\(name)' offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            let type = GGMLType.known[typeID]
            var byteCount: Int? = nil
            if let type {
                guard let first = dims.first, first % type.blockSize == 0 else {
                    throw .format("'\(file.path)': GGUF tensor '\(name)' row length \(dims.first ?? 0) is not a multiple of the \(type) block size \(type.blockSize)")
                }
                byteCount = elements / type.blockSize * type.bytesPerBlock
            }
            if tensorIndex.updateValue(tensors.count, forKey: name) != nil {
                throw .format("'\(file.path)': GGUF tensor '\(name)' appears twice")
            }
            tensors.append(GGUFTensorInfo(name: name, dimensions: dims, typeID: typeID, type: type,
                                          offset: offset, byteCount: byteCount))
        }
        self.tensors = tensors
        self.tensorIndex = tensorIndex

        let headerEnd = reader.position
        let padded = (headerEnd + alignment - 1) / alignment * alignment
        dataOffset = padded
        for t in tensors {
            guard let size = t.byteCount else { continue }
            guard padded <= file.count, t.offset <= file.count - padded, size <= file.count - padded - t.offset else {
                throw .format("'\(file.path)': GGUF tensor '\(t.name)' data (\(size) bytes at data offset \(t.offset)) extends past the end of the file (\(file.count) bytes)")
            }
        }
        // Two tensors sharing bytes would alias each other's weights: llama.cpp's reader demands the exact layout
        // its writer makes (in order, each padded to the alignment); this demands only what safety and meaning
        // need, disjoint ranges (any order, any padding between them).
        let byOffset = tensors.filter { ($0.byteCount ?? 0) > 0 }.sorted { $0.offset < $1.offset }
        var reach: (end: Int, name: String)? = nil   // the furthest end of the tensors before, and whose it is
        for t in byOffset {
            let end = t.offset + (t.byteCount ?? 0)
            if let reach, t.offset < reach.end {
                throw .format("'\(file.path)': GGUF tensor '\(t.name)' (data offset \(t.offset)) overlaps tensor"
                    + " '\(reach.name)', whose data runs to data offset \(reach.end)")
            }
            if end > (reach?.end ?? 0) { reach = (end, t.name) }
        }
    }

    // MARK: metadata lookup

    public func value(for key: String) -> GGUFValue? { values[key] }

    /// The string stored under `key`; nil if absent, an error if present with another type.
    public func string(for key: String) throws(GLMError) -> String? {
        guard let v = values[key] else { return nil }
        guard let s = v.stringValue else { throw typeError(key, v, expected: "a string") }
        return s
    }

    /// Any integer type under `key`, as Int.
    public func integer(for key: String) throws(GLMError) -> Int? {
        guard let v = values[key] else { return nil }
        guard let i = v.intValue else { throw typeError(key, v, expected: "an integer") }
        return i
    }

    public func double(for key: String) throws(GLMError) -> Double? {
        guard let v = values[key] else { return nil }
        guard let d = v.doubleValue else { throw typeError(key, v, expected: "a number") }
        return d
    }

    public func bool(for key: String) throws(GLMError) -> Bool? {
        guard let v = values[key] else { return nil }
        guard let b = v.boolValue else { throw typeError(key, v, expected: "a bool") }
        return b
    }

    public func array(for key: String) throws(GLMError) -> GGUFArray? {
        guard let v = values[key] else { return nil }
        guard let a = v.arrayValue else { throw typeError(key, v, expected: "an array") }
        return a
    }

    public func stringArray(for key: String) throws(GLMError) -> [String]? {
        try array(for: key)?.strings()
    }

    public func integerArray(for key: String) throws(GLMError) -> [Int]? {
        try array(for: key)?.integers()
    }

    private func typeError(_ key: String, _ value: GGUFValue, expected: String) -> GLMError {
        .format("'\(file.path)': GGUF key '\(key)' is \(value.type), expected \(expected)")
    }

    // MARK: tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Absolute byte range of a tensor's data in the file.
    public func byteRange(of tensor: GGUFTensorInfo) throws(GLMError) -> Range<Int> {
        guard let size = tensor.byteCount else {
            throw .unsupported("'\(file.path)': GGUF tensor '\(tensor.name)' has ggml type \(tensor.typeID), which this reader cannot size")
        }
        let start = dataOffset + tensor.offset
        return start..<(start + size)
    }

    /// A tensor's bytes, in place in the mapping.
    public func data(of tensor: GGUFTensorInfo) throws(GLMError) -> UnsafeRawBufferPointer {
        let range = try byteRange(of: tensor)
        return try file.slice(offset: range.lowerBound, count: range.count)
    }
}
