import GLMSupport
import Glibc

/// Writes a GGUF (version 3) file as a stream, the layout ggml's gguf writer produces: the header (metadata, then
/// every tensor's name, dimensions, type and offset) first, padded to the alignment; then each tensor's bytes, each
/// padded with zeros to the alignment (the last one too). Because every tensor's type and size is known before its
/// data exists, the header is written once, up front, and tensors follow one at a time: no model-sized buffer.
///
/// Use: `init` (writes the header), then for every tensor in order `write(_:)` its bytes in any number of pieces and
/// `finishTensor()`, then `close()`. On any error (or if `close` is never reached) `abandon()` removes the file.
public final class GGUFWriter {
    public struct Tensor: Sendable {
        public var name: String
        /// ggml order (fastest-varying first), as GGUFTensorInfo.
        public var dimensions: [Int]
        public var type: GGMLType

        public init(name: String, dimensions: [Int], type: GGMLType) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
        }

        public var byteCount: Int {
            dimensions.reduce(1, *) / type.blockSize * type.bytesPerBlock
        }
    }

    public let path: String
    public let alignment: Int
    public let tensors: [Tensor]
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var current = 0          // index of the tensor being written
    private var writtenInTensor = 0
    private var closed = false
    private static let bufferSize = 4 << 20

    /// A metadata entry as it is stored: key, type tag, value. `GGUFFile.keyRanges` gives the source bytes of an
    /// entry to copy; `uint32(_:_:)` and `string(_:_:)` make new ones.
    public struct Entry: Sendable {
        public var key: String
        public var bytes: [UInt8]

        public init(key: String, bytes: [UInt8]) {
            self.key = key
            self.bytes = bytes
        }

        public static func uint32(_ key: String, _ value: UInt32) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.uint32.rawValue))
            GGUFWriter.append(&b, value)
            return Entry(key: key, bytes: b)
        }

        public static func string(_ key: String, _ value: String) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.string.rawValue))
            b += GGUFWriter.encodeString(value)
            return Entry(key: key, bytes: b)
        }

        public static func int32(_ key: String, _ value: Int32) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.int32.rawValue))
            GGUFWriter.append(&b, value)
            return Entry(key: key, bytes: b)
        }

        public static func float32(_ key: String, _ value: Float) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.float32.rawValue))
            GGUFWriter.append(&b, value.bitPattern)
            return Entry(key: key, bytes: b)
        }

        public static func bool(_ key: String, _ value: Bool) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.bool.rawValue))
            b.append(value ? 1 : 0)
            return Entry(key: key, bytes: b)
        }

        public static func strings(_ key: String, _ values: [String]) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.array.rawValue))
            GGUFWriter.append(&b, UInt32(GGUFValueType.string.rawValue))
            GGUFWriter.append(&b, UInt64(values.count))
            for v in values { b += GGUFWriter.encodeString(v) }
            return Entry(key: key, bytes: b)
        }

        public static func int32s(_ key: String, _ values: [Int32]) -> Entry {
            var b = GGUFWriter.encodeString(key)
            GGUFWriter.append(&b, UInt32(GGUFValueType.array.rawValue))
            GGUFWriter.append(&b, UInt32(GGUFValueType.int32.rawValue))
            GGUFWriter.append(&b, UInt64(values.count))
            b.reserveCapacity(b.count + 4 * values.count)
            for v in values { GGUFWriter.append(&b, v) }
            return Entry(key: key, bytes: b)
        }
    }

    /// Creates (or truncates) `path` and writes the header. Dimensions must be whole blocks of each tensor's type.
    public init(path: String, metadata: [Entry], tensors: [Tensor], alignment: Int = GGUFFile.defaultAlignment) throws(GLMError) {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw .invalidArgument("GGUF writer: alignment \(alignment) is not a power of two")
        }
        var names = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else { throw .invalidArgument("GGUF writer: tensor '\(t.name)' appears twice") }
            guard !t.dimensions.isEmpty, t.dimensions.count <= GGUFFile.maxDimensions, t.dimensions.allSatisfy({ $0 >= 0 }),
                  t.dimensions[0] % t.type.blockSize == 0 else {
                throw .invalidArgument("GGUF writer: tensor '\(t.name)' has dimensions \(t.dimensions), not whole \(t.type) blocks")
            }
        }
        self.path = path
        self.alignment = alignment
        self.tensors = tensors
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("cannot create '\(path)': \(String(cString: strerror(errno)))") }
        // Only a regular file: a failed write removes the partial output, which must never be a device (/dev/full)
        // or anything else the caller did not mean to lose.
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            fd = -1
            closed = true
            throw .invalidArgument("'\(path)' is not a regular file; GGUF output goes to a regular file")
        }

        var header: [UInt8] = []
        GGUFWriter.append(&header, GGUFFile.magic)
        GGUFWriter.append(&header, UInt32(3))
        GGUFWriter.append(&header, UInt64(tensors.count))
        GGUFWriter.append(&header, UInt64(metadata.count))
        for e in metadata { header += e.bytes }
        var offset = 0
        for t in tensors {
            header += GGUFWriter.encodeString(t.name)
            // ggml writes as many dimensions as the tensor has up to its last one above 1 (at least one).
            var n = t.dimensions.count
            while n > 1 && t.dimensions[n - 1] == 1 { n -= 1 }
            GGUFWriter.append(&header, UInt32(n))
            for d in t.dimensions[0..<n] { GGUFWriter.append(&header, UInt64(d)) }
            GGUFWriter.append(&header, t.type.rawValue)
            GGUFWriter.append(&header, UInt64(offset))
            offset += GGUFWriter.padded(t.byteCount, alignment)
        }
        header += [UInt8](repeating: 0, count: GGUFWriter.padded(header.count, alignment) - header.count)
        buffer.reserveCapacity(GGUFWriter.bufferSize)
        do {
            try emit(header)
        } catch {
            abandon()
            throw error
        }
    }

    deinit {
        if !closed { abandon() }
    }

    /// The next bytes of the current tensor.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(GLMError) {
        guard current < tensors.count, bytes.count <= tensors[current].byteCount - writtenInTensor else {
            throw GLMError(.internal, "GGUF writer: more bytes than tensor \(current < tensors.count ? "'\(tensors[current].name)'" : "#\(current)") holds")
        }
        writtenInTensor += bytes.count
        if buffer.count + bytes.count > GGUFWriter.bufferSize { try flush() }
        if bytes.count >= GGUFWriter.bufferSize {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Ends the current tensor (all its bytes written) and pads to the alignment.
    public func finishTensor() throws(GLMError) {
        guard current < tensors.count, writtenInTensor == tensors[current].byteCount else {
            throw GLMError(.internal, "GGUF writer: tensor \(current < tensors.count ? "'\(tensors[current].name)'" : "#\(current)") is incomplete (\(writtenInTensor) bytes)")
        }
        let size = tensors[current].byteCount
        try emit([UInt8](repeating: 0, count: GGUFWriter.padded(size, alignment) - size))
        current += 1
        writtenInTensor = 0
    }

    /// Flushes and closes; the file is complete only after this returns.
    public func close() throws(GLMError) {
        guard !closed else { return }
        guard current == tensors.count else {
            throw GLMError(.internal, "GGUF writer: closed after \(current) of \(tensors.count) tensors")
        }
        try flush()
        let rc = Glibc.close(fd)
        fd = -1
        closed = true
        guard rc == 0 else { throw .io("cannot finish writing '\(path)': \(String(cString: strerror(errno)))") }
    }

    /// Closes and removes the partial file.
    public func abandon() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        if !closed { unlink(path) }
        closed = true
    }

    private func emit(_ bytes: [UInt8]) throws(GLMError) {
        if buffer.count + bytes.count > GGUFWriter.bufferSize { try flush() }
        buffer += bytes
    }

    private func flush() throws(GLMError) {
        guard !buffer.isEmpty else { return }
        var failure: GLMError?
        buffer.withUnsafeBytes { p in
            do { try writeAll(p) } catch let e as GLMError { failure = e } catch { failure = GLMError(.internal, "\(error)") }
        }
        buffer.removeAll(keepingCapacity: true)
        if let failure { throw failure }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(GLMError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = errno == ENOSPC ? "the disk is full" : String(cString: strerror(errno))
                throw .io("cannot write '\(path)': \(reason)")
            }
            if n == 0 { throw .io("cannot write '\(path)': no progress") }
            done += n
        }
    }

    static func padded(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func encodeString(_ s: String) -> [UInt8] {
        var b: [UInt8] = []
        append(&b, UInt64(s.utf8.count))
        b.append(contentsOf: s.utf8)
        return b
    }
}
