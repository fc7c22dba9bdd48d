import GLMJSON
import GLMSupport

/// One `.safetensors` file, memory-mapped and fully validated; tensor data stays in the map.
///
/// Format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an object: tensor name →
/// `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional `"__metadata__"` object), then the data, with
/// offsets relative to byte 8 + N. Validation follows the reference reader (huggingface/safetensors): the header is
/// at most 100 MB, starts with `{`, every tensor's byte length equals product(shape) × element size, and the tensors
/// tile the data section exactly (no overlaps, no holes, nothing after the last tensor). In addition every tensor must
/// start at a multiple of its element size, so callers can read it through typed pointers (the reference writer
/// always produces such files).
public final class SafetensorsFile: Sendable {
    public let path: String
    /// The `__metadata__` object of the header (empty if absent).
    public let metadata: JSONObject
    /// Tensors by name.
    public let tensors: [String: TensorInfo]
    /// Tensor names in the order their data appears in the file.
    public let tensorNames: [String]
    /// The whole file's map (shared with every `TensorInfo`).
    public let mapping: MappedFile

    /// The largest header the reference reader accepts.
    public static let maxHeaderSize = 100_000_000

    /// Maps and validates `path`. Throws `.io` if it cannot be opened, `.format` naming the file, the tensor and the
    /// field for any malformed header, `.unsupported` for a dtype this library does not read.
    public init(path: String) throws(GLMError) {
        let file = try MappedFile(path: path)
        self.path = path
        self.mapping = file
        let parsed = try SafetensorsFile.parseHeader(file)
        self.metadata = parsed.metadata
        self.tensors = parsed.tensors
        self.tensorNames = parsed.order
    }

    /// Total bytes of tensor data (the file size less the header).
    public var dataByteCount: Int { tensors.values.reduce(0) { $0 + $1.bytes.count } }

    private struct Entry {
        var name: String
        var dtype: TensorDType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    private static func parseHeader(_ file: MappedFile) throws(GLMError)
        -> (metadata: JSONObject, tensors: [String: TensorInfo], order: [String]) {
        let path = file.path
        func fail(_ what: String) -> GLMError { .format("safetensors file '\(path)': \(what)") }

        guard file.count >= 8 else {
            throw fail("file is \(file.count) bytes, too short for the 8-byte header length (truncated?)")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(file.bytes[i]) << UInt64(8 * i) }
        guard headerLength <= UInt64(maxHeaderSize) else {
            throw fail("header length \(headerLength) exceeds the \(maxHeaderSize)-byte limit (not a safetensors file?)")
        }
        let headerSize = Int(headerLength)
        guard headerSize <= file.count - 8 else {
            throw fail("header length \(headerSize) runs past the end of the file (\(file.count) bytes; truncated?)")
        }
        guard headerSize > 0 else { throw fail("header is empty (expected a JSON object)") }
        let headerBytes = try file.slice(offset: 8, count: headerSize)
        guard headerBytes[0] == UInt8(ascii: "{") else {
            throw fail("header does not start with '{' (expected a JSON object)")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(bytes: headerBytes.bindMemory(to: UInt8.self), maxDepth: 16)
        } catch {
            throw fail("header is not valid JSON: \(error.message)")
        }
        guard case .object(let object) = header else { throw fail("header is not a JSON object") }

        let dataStart = 8 + headerSize
        let dataSize = file.count - dataStart
        var metadata = JSONObject()
        var entries: [Entry] = []
        entries.reserveCapacity(object.count)
        for (name, value) in object {
            if name == "__metadata__" {
                guard case .object(let m) = value else { throw fail("\"__metadata__\" is not a JSON object") }
                metadata = m
                continue
            }
            entries.append(try parseEntry(name: name, value: value, path: path, fail: fail))
        }

        // The tensors must tile [0, dataSize) exactly: sort by offset, then each must begin where the previous ended.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expectedBegin = 0
        var previous: String? = nil
        for entry in entries {
            if entry.begin < expectedBegin, let previous {
                throw fail("tensor '\(entry.name)' (bytes \(entry.begin)..<\(entry.end)) overlaps tensor '\(previous)'"
                    + " (which ends at \(expectedBegin))")
            }
            if entry.begin > expectedBegin {
                let after = previous.map { "after tensor '\($0)' " } ?? "at the start of the data "
                throw fail("data bytes \(expectedBegin)..<\(entry.begin) \(after)belong to no tensor"
                    + " (next is '\(entry.name)')")
            }
            if entry.end > dataSize {
                throw fail("tensor '\(entry.name)' data_offsets [\(entry.begin), \(entry.end)] run past the end of the"
                    + " data section (\(dataSize) bytes; file \(file.count) bytes, truncated?)")
            }
            if (dataStart + entry.begin) % entry.dtype.byteSize != 0 {
                throw GLMError.unsupported("safetensors file '\(path)': tensor '\(entry.name)' starts at file offset"
                    + " \(dataStart + entry.begin), not a multiple of its \(entry.dtype.rawValue) element size"
                    + " \(entry.dtype.byteSize) (re-save the file with a current safetensors)")
            }
            expectedBegin = entry.end
            previous = entry.name
        }
        if expectedBegin != dataSize {
            throw fail("\(dataSize - expectedBegin) bytes after the last tensor belong to no tensor"
                + " (data section is \(dataSize) bytes, tensors end at \(expectedBegin))")
        }

        var tensors: [String: TensorInfo] = [:]
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let bytes = try file.slice(offset: dataStart + entry.begin, count: entry.end - entry.begin)
            tensors[entry.name] = TensorInfo(name: entry.name, dtype: entry.dtype, shape: entry.shape, bytes: bytes,
                                             fileOffset: dataStart + entry.begin, mapping: file)
        }
        return (metadata, tensors, entries.map(\.name))
    }

    private static func parseEntry(name: String, value: JSONValue, path: String, fail: (String) -> GLMError)
        throws(GLMError) -> Entry {
        guard case .object(let info) = value else { throw fail("tensor '\(name)': entry is not a JSON object") }

        guard let dtypeValue = info["dtype"] else { throw fail("tensor '\(name)': missing \"dtype\"") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw fail("tensor '\(name)': \"dtype\" is not a string")
        }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            let supported = TensorDType.allCases.map(\.rawValue).joined(separator: ", ")
            if TensorDType.knownUnsupported.contains(dtypeName) {
                throw GLMError.unsupported("safetensors file '\(path)': tensor '\(name)': dtype \(dtypeName) is not supported"
                    + " (supported: \(supported))")
            }
            throw fail("tensor '\(name)': unknown dtype \"\(dtypeName)\" (expected one of \(supported))")
        }

        guard let shapeValue = info["shape"] else { throw fail("tensor '\(name)': missing \"shape\"") }
        guard case .array(let dims) = shapeValue else { throw fail("tensor '\(name)': \"shape\" is not an array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for (i, dim) in dims.enumerated() {
            guard let n = exactInteger(dim), n >= 0 else {
                throw fail("tensor '\(name)': shape[\(i)] is \(dim.compactJSON), expected a non-negative integer")
            }
            shape.append(n)
        }

        guard let offsetsValue = info["data_offsets"] else { throw fail("tensor '\(name)': missing \"data_offsets\"") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
              let begin = exactInteger(offsets[0]), let end = exactInteger(offsets[1]), begin >= 0, end >= 0 else {
            throw fail("tensor '\(name)': \"data_offsets\" is \(offsetsValue.compactJSON),"
                + " expected [begin, end] with non-negative integers")
        }
        guard end >= begin else {
            throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] end before they begin")
        }
        guard let size = TensorInfo.byteCount(shape: shape, dtype: dtype) else {
            throw fail("tensor '\(name)': shape \(shape) × \(dtype.byteSize) bytes overflows")
        }
        guard end - begin == size.bytes else {
            throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but \(dtype.rawValue)"
                + "\(shape) needs \(size.elements) × \(dtype.byteSize) = \(size.bytes)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// A JSON integer literal that fits `Int` (floats such as `2.0` are not integers here, as in the reference reader).
    private static func exactInteger(_ value: JSONValue) -> Int? {
        if case .integer(let text) = value { return Int(text) }
        return nil
    }
}
