import GLMJSON
import GLMSupport
import Glibc

/// Writes `.safetensors` files the way the reference writer (huggingface/safetensors) does, byte for byte: tensors
/// ordered by dtype (the reference's dtype order, descending: wide types first) then name, a compact JSON header with `__metadata__` first, padded with
/// spaces to a multiple of 8 bytes, so every tensor is aligned to its element size.
public enum SafetensorsWriter {
    public struct Tensor {
        public var name: String
        public var dtype: TensorDType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: TensorDType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    /// The complete file contents. Throws `.invalidArgument` for a duplicate name or a byte count that does not
    /// match the shape.
    public static func serialize(_ tensors: [Tensor], metadata: [(String, String)] = []) throws(GLMError) -> [UInt8] {
        var seen = Set<String>()
        for t in tensors {
            guard t.name != "__metadata__", seen.insert(t.name).inserted else {
                throw .invalidArgument("safetensors writer: tensor name '\(t.name)' is reserved or used twice")
            }
            guard let size = TensorInfo.byteCount(shape: t.shape, dtype: t.dtype), size.bytes == t.bytes.count else {
                throw .invalidArgument("safetensors writer: tensor '\(t.name)' has \(t.bytes.count) bytes,"
                    + " \(t.dtype.rawValue)\(t.shape) needs product(shape) × \(t.dtype.byteSize)")
            }
        }
        let ordered = tensors.sorted { a, b in
            let ra = writerRank(a.dtype), rb = writerRank(b.dtype)
            return ra != rb ? ra > rb : a.name < b.name
        }
        var header = JSONObject()
        if !metadata.isEmpty { header["__metadata__"] = .object(JSONObject(metadata.map { ($0.0, .string($0.1)) })) }
        var offset = 0
        for t in ordered {
            header[t.name] = .object(JSONObject([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { JSONValue($0) })),
                ("data_offsets", .array([JSONValue(offset), JSONValue(offset + t.bytes.count)])),
            ]))
            offset += t.bytes.count
        }
        var headerBytes = Array(JSONValue.object(header).compactJSON.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        let length = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> UInt64(8 * i))) }
        out += headerBytes
        for t in ordered { out += t.bytes }
        return out
    }

    /// Writes `serialize(tensors, metadata:)` to `path` (replacing it). Throws `.io` naming the path on failure.
    public static func write(path: String, tensors: [Tensor], metadata: [(String, String)] = []) throws(GLMError) {
        try writeFile(path: path, bytes: serialize(tensors, metadata: metadata))
    }

    /// Writes raw bytes to `path` (replacing it).
    public static func writeFile(path: String, bytes: [UInt8]) throws(GLMError) {
        guard let handle = fopen(path, "wb") else {
            throw .io("cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        let closed = fclose(handle)
        guard written == bytes.count, closed == 0 else {
            throw .io("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    /// The reference writer's dtype order (its `Dtype` enum order); files list the highest rank first.
    private static func writerRank(_ dtype: TensorDType) -> Int {
        switch dtype {
        case .bool: return 0
        case .u8: return 1
        case .i8: return 2
        case .f8e5m2: return 3
        case .f8e4m3: return 4
        case .i16: return 5
        case .u16: return 6
        case .f16: return 7
        case .bf16: return 8
        case .i32: return 9
        case .u32: return 10
        case .f32: return 11
        case .f64: return 12
        case .i64: return 13
        case .u64: return 14
        }
    }
}
