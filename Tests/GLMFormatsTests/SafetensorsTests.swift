import GLMFormats
import GLMJSON
import GLMSupport
import Glibc
import Testing

@Suite struct SafetensorsTests {
    /// mixed.safetensors was written by the reference writer; mixed.json is what the reference reader reads from it.
    @Test func readsEveryDTypeWrittenByTheReferenceWriter() throws {
        let file = try SafetensorsFile(path: formatsFixture("mixed.safetensors"))
        let expected = try JSONValue.parse(FileSystem.readText(formatsFixture("mixed.json")))
        let described = try #require(expected["tensors"]?.arrayValue)
        #expect(file.tensors.count == described.count)
        for item in described {
            let name = try #require(item["name"]?.stringValue)
            let info = try #require(file.tensors[name], "\(name)")
            #expect(info.dtype.rawValue == item["dtype"]?.stringValue, "\(name)")
            #expect(info.shape == item["shape"]?.arrayValue?.compactMap(\.intValue), "\(name)")
            #expect(Array(info.bytes) == hexBytes(item["hex"]?.stringValue ?? ""), "\(name)")
            #expect(info.bytes.count == info.elementCount * info.dtype.byteSize)
            #expect(Int(bitPattern: info.bytes.baseAddress) % info.dtype.byteSize == 0, "\(name) aligned")
            #expect(info.file == formatsFixture("mixed.safetensors"))
        }
        #expect(file.metadata["format"] == .string("pt"))
        #expect(file.metadata["note"] == .string("libglm fixture"))
        #expect(file.tensors["scalar"]?.shape == [] && file.tensors["scalar"]?.elementCount == 1)
        #expect(file.tensors["empty"]?.elementCount == 0 && file.tensors["empty"]?.bytes.count == 0)
        // Data order: the reference writer puts 8-byte types first.
        #expect(file.tensorNames.first == "ids.i64" && file.tensorNames.last == "mask.bool")
        // The bytes are the map's, not a copy.
        let w = try #require(file.tensors["w.f32"])
        #expect(w.bytes.baseAddress == file.mapping.bytes.baseAddress.map { $0 + w.fileOffset })
    }

    @Test func writerReproducesTheReferenceWriterByteForByte() throws {
        let reference = try fileBytes(formatsFixture("mixed.safetensors"))
        let file = try SafetensorsFile(path: formatsFixture("mixed.safetensors"))
        let tensors = file.tensorNames.reversed().compactMap { name in
            file.tensors[name].map { SafetensorsWriter.Tensor(name: name, dtype: $0.dtype, shape: $0.shape,
                                                              bytes: Array($0.bytes)) }
        }
        let bytes = try SafetensorsWriter.serialize(tensors, metadata: [("note", "libglm fixture"), ("format", "pt")])
        #expect(bytes == reference)

        let dir = TemporaryDirectory()
        let path = dir.file("round.safetensors")
        try SafetensorsWriter.write(path: path, tensors: tensors)
        let reread = try SafetensorsFile(path: path)
        for name in file.tensorNames {
            #expect(reread.tensors[name].map { Array($0.bytes) } == file.tensors[name].map { Array($0.bytes) })
        }
        expectGLMError(.invalidArgument, ["'x'", "3 bytes"]) {
            _ = try SafetensorsWriter.serialize([.init(name: "x", dtype: .f32, shape: [1], bytes: [1, 2, 3])])
        }
        expectGLMError(.invalidArgument, ["'x'", "used twice"]) {
            let t = SafetensorsWriter.Tensor(name: "x", dtype: .u8, shape: [1], bytes: [1])
            _ = try SafetensorsWriter.serialize([t, t])
        }
    }

    /// Each hostile file must produce a GLMError naming the file, the tensor or field and what was expected.
    @Test(arguments: [
        // (case, header or nil for raw bytes, data size, declared length, expected code, expected message parts)
        HostileCase("empty file", raw: [], .format, ["too short"]),
        HostileCase("5-byte file", raw: [1, 2, 3, 4, 5], .format, ["5 bytes", "too short"]),
        HostileCase("huge header length", header: "{}", declaredLength: UInt64.max, .format, ["exceeds"]),
        HostileCase("header length past EOF", header: "{}", declaredLength: 1000, .format,
                    ["header length 1000", "past the end", "truncated"]),
        HostileCase("zero header length", header: "", .format, ["header is empty"]),
        HostileCase("bad JSON", header: #"{"a": "#, .format, ["not valid JSON"]),
        HostileCase("non-object", header: "[1, 2]", .format, ["does not start with '{'"]),
        HostileCase("invalid UTF-8", raw: rawSafetensors(header: "{\"\u{FF}\": 1}").map { $0 == 0xC3 ? 0xFF : $0 },
                    .format, ["not valid JSON"]),
        HostileCase("deep nesting", header: "{\"a\":" + String(repeating: "[", count: 100), .format,
                    ["not valid JSON"]),
        HostileCase("entry not object", header: #"{"t": 5}"#, .format, ["tensor 't'", "not a JSON object"]),
        HostileCase("metadata not object", header: #"{"__metadata__": []}"#, .format, ["__metadata__"]),
        HostileCase("missing dtype", header: #"{"t": {"shape": [1], "data_offsets": [0, 4]}}"#, data: 4, .format,
                    ["tensor 't'", "missing \"dtype\""]),
        HostileCase("missing shape", header: #"{"t": {"dtype": "F32", "data_offsets": [0, 4]}}"#, data: 4, .format,
                    ["tensor 't'", "missing \"shape\""]),
        HostileCase("missing offsets", header: #"{"t": {"dtype": "F32", "shape": [1]}}"#, data: 4, .format,
                    ["tensor 't'", "missing \"data_offsets\""]),
        HostileCase("dtype not string", header: #"{"t": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}}"#,
                    data: 4, .format, ["\"dtype\" is not a string"]),
        HostileCase("unknown dtype", header: #"{"t": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}"#,
                    data: 4, .format, ["tensor 't'", "unknown dtype \"Q9\"", "BF16"]),
        HostileCase("unsupported dtype", header: #"{"t": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}"#,
                    data: 1, .unsupported, ["tensor 't'", "F4"]),
        HostileCase("shape not array", header: #"{"t": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}}"#,
                    data: 4, .format, ["\"shape\" is not an array"]),
        HostileCase("negative dim", header: #"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#,
                    data: 4, .format, ["shape[0] is -1", "non-negative integer"]),
        HostileCase("float dim", header: #"{"t": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}"#,
                    data: 4, .format, ["shape[0] is 1.0"]),
        HostileCase("one offset", header: #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}"#,
                    data: 4, .format, ["\"data_offsets\" is [4]", "[begin, end]"]),
        HostileCase("negative offset", header: #"{"t": {"dtype": "U8", "shape": [1], "data_offsets": [-1, 0]}}"#,
                    data: 4, .format, ["[begin, end]"]),
        HostileCase("offset beyond Int", header:
                        #"{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 99999999999999999999999]}}"#,
                    data: 4, .format, ["[begin, end]"]),
        HostileCase("end before begin", header: #"{"t": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}"#,
                    data: 4, .format, ["end before they begin"]),
        HostileCase("offsets past data", header: #"{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#,
                    data: 8, .format, ["tensor 't'", "[0, 16]", "past the end", "8 bytes"]),
        HostileCase("length mismatch", header: #"{"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#,
                    data: 8, .format, ["tensor 't'", "hold 8 bytes", "3 × 4 = 12"]),
        HostileCase("shape overflow", header:
                        #"{"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#,
                    data: 8, .format, ["tensor 't'", "overflows"]),
        HostileCase("byte size overflow", header:
                        #"{"t": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 8]}}"#,
                    data: 8, .format, ["overflows"]),
        HostileCase("overlap", header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},"#
                        + #" "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                    data: 12, .format, ["'b'", "overlaps tensor 'a'"]),
        HostileCase("same range twice", header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},"#
                        + #" "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#,
                    data: 8, .format, ["'b'", "overlaps tensor 'a'"]),
        HostileCase("hole", header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},"#
                        + #" "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#,
                    data: 12, .format, ["bytes 4..<8", "after tensor 'a'", "belong to no tensor"]),
        HostileCase("duplicate name", header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},"#
                        + #" "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
                    data: 8, .format, ["bytes 0..<4", "belong to no tensor"]),
        HostileCase("trailing bytes", header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
                    data: 12, .format, ["8 bytes after the last tensor"]),
        HostileCase("misaligned", header: #"{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},"#
                        + #" "b": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}}"#,
                    data: 5, .unsupported, ["tensor 'b'", "not a multiple", "element size 4"]),
    ])
    func hostileHeaderIsAnError(_ c: HostileCase) throws {
        let dir = TemporaryDirectory()
        let path = try dir.write("bad.safetensors", c.bytes)
        expectGLMError(c.code, ["'\(path)'"] + c.parts) { _ = try SafetensorsFile(path: path) }
    }

    @Test func truncatedFileIsAnError() throws {
        let original = try fileBytes(formatsFixture("mixed.safetensors"))
        let dir = TemporaryDirectory()
        for cut in [1, 3, 100, original.count - 20, original.count - 7] {
            let path = try dir.write("cut\(cut).safetensors", Array(original.prefix(cut)))
            expectGLMError(.format, [path]) { _ = try SafetensorsFile(path: path) }
        }
        let path = try dir.write("cut.safetensors", Array(original.dropLast(1)))
        expectGLMError(.format, ["'mask.bool'", "past the end", "truncated"]) { _ = try SafetensorsFile(path: path) }
        expectGLMError(.io, ["no-such.safetensors"]) { _ = try SafetensorsFile(path: dir.file("no-such.safetensors")) }
        expectGLMError(.io, ["directory"]) { _ = try SafetensorsFile(path: dir.path) }
    }

    /// Random byte flips in a real header: every outcome is either a GLMError or a file whose tensors all lie
    /// inside the map with consistent sizes. (A crash here fails the whole test run.)
    @Test func mutatedHeadersNeverEscapeTheMap() throws {
        let original = try fileBytes(formatsFixture("mixed.safetensors"))
        let headerEnd = 8 + Int(original[0]) + Int(original[1]) << 8
        let dir = TemporaryDirectory()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(truncatingIfNeeded: state >> 1)
        }
        var accepted = 0, rejected = 0
        let alphabet = Array(#"0123456789[]{}",:-e. FIUB"#.utf8) + [0, 0xFF]
        for i in 0..<600 {
            var bytes = original
            for _ in 0..<(1 + next() % 3) {
                let position = next() % headerEnd
                bytes[position] = i % 2 == 0 ? alphabet[next() % alphabet.count] : UInt8(truncatingIfNeeded: next())
            }
            let path = try dir.write("m.safetensors", bytes)
            do {
                let file = try SafetensorsFile(path: path)
                accepted += 1
                let base = try #require(file.mapping.bytes.baseAddress)
                for info in file.tensors.values {
                    let start = try #require(info.bytes.baseAddress) - base
                    #expect(start >= 0 && start + info.bytes.count <= file.mapping.count)
                    #expect(info.bytes.count == info.elementCount * info.dtype.byteSize)
                }
            } catch {
                rejected += 1
            }
        }
        #expect(accepted + rejected == 600 && rejected > 300)
    }

    /// A sparse file far larger than this machine's RAM opens instantly: only the header is read.
    @Test func fileLargerThanMemoryOpens() throws {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        let ram = pages * pageSize
        var rows = 1 << 20
        while rows * 65536 * 2 < 2 * ram { rows *= 2 }
        let dataSize = rows * 65536 * 2
        var header = Array(#"{"huge":{"dtype":"BF16","shape":[\#(rows),65536],"data_offsets":[0,\#(dataSize)]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let dir = TemporaryDirectory()
        let path = try dir.write("huge.safetensors", rawSafetensors(header: String(decoding: header, as: UTF8.self)))
        guard truncate(path, off_t(8 + header.count + dataSize)) == 0 else {
            Issue.record("cannot make a sparse file here (\(String(cString: strerror(errno))))")
            return
        }
        let file = try SafetensorsFile(path: path)
        let info = try #require(file.tensors["huge"])
        #expect(info.bytes.count == dataSize && dataSize > ram)
        #expect(info.bytes[dataSize - 1] == 0)
    }
}

struct HostileCase: CustomTestStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let code: GLMError.Code
    let parts: [String]
    var testDescription: String { name }

    init(_ name: String, raw: [UInt8], _ code: GLMError.Code, _ parts: [String]) {
        self.name = name
        self.bytes = raw
        self.code = code
        self.parts = parts
    }

    init(_ name: String, header: String, data: Int = 0, declaredLength: UInt64? = nil, _ code: GLMError.Code,
         _ parts: [String]) {
        // Pad to 8 like the reference writer, so alignment is not what fails.
        var padded = header
        while padded.utf8.count % 8 != 0 && declaredLength == nil && !padded.isEmpty { padded += " " }
        self.init(name, raw: rawSafetensors(header: padded, data: Array(repeating: 0, count: data),
                                           declaredLength: declaredLength), code, parts)
    }
}
