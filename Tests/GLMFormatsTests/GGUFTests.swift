import Glibc
import GLMFormats
import GLMSupport
import Testing

private let referenceDirectory: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return parts.joined(separator: "/") + "/Fixtures/tokenizers"
}()

/// Writes `bytes` to a fresh temporary file and returns its path.
private func temporaryFile(_ bytes: [UInt8], _ name: String) throws -> String {
    let path = "/tmp/glm-gguf-test-\(getpid())-\(name).gguf"
    guard let f = fopen(path, "wb") else { throw GLMError.io("cannot create \(path)") }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
    return path
}

/// The message of the error opening `path` fails with, or nil if it opens.
private func openingError(_ path: String) -> String? {
    do {
        _ = try GGUFFile(path: path)
        return nil
    } catch {
        return error.message
    }
}

private func readBytes(_ path: String) throws -> [UInt8] {
    let file = try MappedFile(path: path)
    return Array(file.bytes)
}

/// Little-endian GGUF builder for synthetic files.
private struct GGUFBuilder {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func key(_ k: String, type: UInt32) { string(k); u32(type) }
}

/// A v3 file with one value of every type, a nested array and two F32 tensors.
private func syntheticFile(alignment: UInt32 = 64) -> [UInt8] {
    var b = GGUFBuilder()
    b.u32(0x4655_4747); b.u32(3); b.u64(2); b.u64(16)
    b.key("u8", type: 0); b.bytes.append(200)
    b.key("i8", type: 1); b.bytes.append(0xFE)
    b.key("u16", type: 2); b.bytes += [0x34, 0x12]
    b.key("i16", type: 3); b.bytes += [0xFF, 0xFF]
    b.key("u32", type: 4); b.u32(4_000_000_000)
    b.key("i32", type: 5); b.u32(UInt32(bitPattern: -7))
    b.key("f32", type: 6); b.u32(Float(1.5).bitPattern)
    b.key("bool", type: 7); b.bytes.append(1)
    b.key("str", type: 8); b.string("héllo")
    b.key("u64", type: 10); b.u64(1 << 40)
    b.key("i64", type: 11); b.u64(UInt64(bitPattern: -3))
    b.key("f64", type: 12); b.u64(Double(-2.25).bitPattern)
    b.key("strings", type: 9); b.u32(8); b.u64(3); b.string("a"); b.string(""); b.string("Ġthe")
    b.key("ints", type: 9); b.u32(5); b.u64(3); b.u32(1); b.u32(UInt32(bitPattern: -2)); b.u32(3)
    b.key("nested", type: 9); b.u32(9); b.u64(2)
    b.u32(4); b.u64(2); b.u32(10); b.u32(20)
    b.u32(8); b.u64(1); b.string("x")
    b.key("general.alignment", type: 4); b.u32(alignment)
    b.string("w"); b.u32(2); b.u64(4); b.u64(2); b.u32(0); b.u64(0)
    b.string("b"); b.u32(1); b.u64(3); b.u32(0); b.u64(UInt64(alignment))
    while b.bytes.count % Int(alignment) != 0 { b.bytes.append(0) }
    for i in 0..<8 { b.u32(Float(i).bitPattern) }
    while b.bytes.count % Int(alignment) != 0 { b.bytes.append(0) }
    for i in 0..<3 { b.u32(Float(100 + i).bitPattern) }
    return b.bytes
}

@Test func syntheticFileEveryValueType() throws {
    let path = try temporaryFile(syntheticFile(), "synthetic")
    defer { unlink(path) }
    let g = try GGUFFile(path: path)
    #expect(g.version == 3)
    #expect(g.keys.count == 16)
    #expect(try g.integer(for: "u8") == 200)
    #expect(try g.integer(for: "i8") == -2)
    #expect(try g.integer(for: "u16") == 0x1234)
    #expect(try g.integer(for: "i16") == -1)
    #expect(try g.integer(for: "u32") == 4_000_000_000)
    #expect(try g.integer(for: "i32") == -7)
    #expect(try g.double(for: "f32") == 1.5)
    #expect(try g.bool(for: "bool") == true)
    #expect(try g.string(for: "str") == "héllo")
    #expect(try g.integer(for: "u64") == 1 << 40)
    #expect(try g.integer(for: "i64") == -3)
    #expect(try g.double(for: "f64") == -2.25)
    #expect(try g.stringArray(for: "strings") == ["a", "", "Ġthe"])
    #expect(try g.integerArray(for: "ints") == [1, -2, 3])
    let nested = try #require(try g.array(for: "nested")).values()
    #expect(nested.count == 2)
    #expect(try nested[0].arrayValue?.integers() == [10, 20])
    #expect(try nested[1].arrayValue?.strings() == ["x"])
    #expect(g.alignment == 64)
    #expect(try g.string(for: "missing") == nil)
    #expect(throws: GLMError.self) { try g.string(for: "u8") }
    #expect(throws: GLMError.self) { try g.integerArray(for: "strings") }

    let w = try #require(g.tensor(named: "w"))
    #expect(w.dimensions == [4, 2] && w.type?.name == "F32" && w.byteCount == 32)
    let wData = try g.data(of: w)
    #expect(wData.loadUnaligned(fromByteOffset: 28, as: Float.self) == 7)
    let bias = try #require(g.tensor(named: "b"))
    #expect(try g.data(of: bias).loadUnaligned(fromByteOffset: 4, as: Float.self) == 101)
    #expect(g.dataOffset % 64 == 0)
}

@Test func realVocabularyFiles() throws {
    let qwen = try GGUFFile(path: referenceDirectory + "/ggml-vocab-qwen2.gguf")
    #expect(try qwen.string(for: "tokenizer.ggml.model") == "gpt2")
    #expect(try qwen.string(for: "tokenizer.ggml.pre") == "qwen2")
    let tokens = try #require(try qwen.array(for: "tokenizer.ggml.tokens"))
    #expect(tokens.count == 151_936)
    let strings = try tokens.strings()
    #expect(strings[198] == "Ċ")
    #expect(strings[151_643] == "<|endoftext|>")
    #expect(try qwen.array(for: "tokenizer.ggml.merges")?.count == 151_387)
    #expect(try qwen.integerArray(for: "tokenizer.ggml.token_type")?.count == 151_936)
    #expect(qwen.tensors.isEmpty)

    let gpt2 = try GGUFFile(path: referenceDirectory + "/ggml-vocab-gpt-2.gguf")
    #expect(try gpt2.string(for: "tokenizer.ggml.pre") == "gpt-2")
    #expect(try gpt2.stringArray(for: "tokenizer.ggml.tokens")?.count == 50_257)
}

@Test func everyTruncationFailsCleanly() throws {
    let full = syntheticFile()
    var failures = 0
    // Every prefix shorter than the whole file must be rejected (the last tensor's data reaches the end).
    for length in 0..<full.count {
        let path = try temporaryFile(Array(full[0..<length]), "trunc")
        defer { unlink(path) }
        do { _ = try GGUFFile(path: path) } catch { failures += 1 }
    }
    #expect(failures == full.count)

    // Truncated copies of the real file (every 97th length in the header region, then coarse steps).
    let real = try readBytes(referenceDirectory + "/ggml-vocab-gpt-2.gguf")
    for length in stride(from: 0, to: real.count, by: real.count / 53) {
        let path = try temporaryFile(Array(real[0..<length]), "realtrunc")
        defer { unlink(path) }
        #expect(throws: GLMError.self) { try GGUFFile(path: path) }
    }
}

@Test func hostileCountsFailFast() throws {
    var base = GGUFBuilder()
    base.u32(0x4655_4747); base.u32(3); base.u64(0); base.u64(1)
    base.key("tokens", type: 9); base.u32(8); base.u64(1 << 60)
    base.string("x")
    let path = try temporaryFile(base.bytes, "hostile")
    defer { unlink(path) }
    let message = openingError(path)
    #expect(message?.contains("claims 1152921504606846976 elements") == true, "\(message ?? "accepted")")

    // A string claiming 2^63 bytes, a tensor count of 2^62, nesting 100 deep, a bad value type, a bad bool.
    var longString = GGUFBuilder()
    longString.u32(0x4655_4747); longString.u32(3); longString.u64(0); longString.u64(1)
    longString.string("k"); longString.u32(8); longString.u64(1 << 63)
    var manyTensors = GGUFBuilder()
    manyTensors.u32(0x4655_4747); manyTensors.u32(2); manyTensors.u64(1 << 62); manyTensors.u64(0)
    var deep = GGUFBuilder()
    deep.u32(0x4655_4747); deep.u32(3); deep.u64(0); deep.u64(1); deep.key("deep", type: 9)
    for _ in 0..<100 { deep.u32(9); deep.u64(1) }
    var badType = GGUFBuilder()
    badType.u32(0x4655_4747); badType.u32(3); badType.u64(0); badType.u64(1); badType.key("k", type: 13); badType.u32(0)
    var badBool = GGUFBuilder()
    badBool.u32(0x4655_4747); badBool.u32(3); badBool.u64(0); badBool.u64(1); badBool.key("k", type: 7); badBool.bytes.append(2)
    var badVersion = GGUFBuilder()
    badVersion.u32(0x4655_4747); badVersion.u32(1); badVersion.u64(0); badVersion.u64(0)
    var badMagic = GGUFBuilder()
    badMagic.u32(0x4655_4748); badMagic.u32(3); badMagic.u64(0); badMagic.u64(0)
    for (name, bytes) in [("long", longString.bytes), ("tensors", manyTensors.bytes), ("deep", deep.bytes),
                          ("type", badType.bytes), ("bool", badBool.bytes), ("version", badVersion.bytes),
                          ("magic", badMagic.bytes)] {
        let p = try temporaryFile(bytes, name)
        defer { unlink(p) }
        #expect(throws: GLMError.self, "\(name)") { try GGUFFile(path: p) }
    }
}

@Test func corruptedTensorInfoIsRejected() throws {
    let good = syntheticFile()
    // Locate the tensor "b" offset field (the last u64 of the header) by searching the name.
    let name: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "b")]
    let at = try #require((0..<(good.count - name.count)).first { Array(good[$0..<($0 + name.count)]) == name })
    let offsetField = at + name.count + 4 + 8 + 4
    var misaligned = good
    misaligned[offsetField] = 3
    var pastEnd = good
    pastEnd[offsetField + 2] = 0x10
    var tooManyDims = good
    tooManyDims[at + name.count] = 5
    var badAlignment = good
    let alignKey = Array("general.alignment".utf8)
    let k = try #require((0..<(good.count - alignKey.count)).first { Array(good[$0..<($0 + alignKey.count)]) == alignKey })
    badAlignment[k + alignKey.count + 4] = 48
    for (label, bytes) in [("misaligned", misaligned), ("pastEnd", pastEnd), ("dims", tooManyDims),
                           ("alignment", badAlignment)] {
        let p = try temporaryFile(bytes, label)
        defer { unlink(p) }
        #expect(throws: GLMError.self, "\(label)") { try GGUFFile(path: p) }
    }
}
