import GLMFormats
import GLMSupport
import Glibc
import Testing

/// Tests/Fixtures, found from this file's path.
let fixturesDirectory: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)  // GLMFormatsTests/<file>
    return parts.joined(separator: "/") + "/Fixtures"
}()

func formatsFixture(_ name: String) -> String { fixturesDirectory + "/formats/" + name }
func modelFixture(_ name: String) -> String { fixturesDirectory + "/models/" + name }

/// A fresh directory under /tmp, removed (with the plain files in it) when released.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/glm-formats-XXXXXX".utf8CString)
        let created: String? = template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
            return String(cString: result)
        }
        path = created ?? "/tmp/glm-formats-unavailable"
    }

    deinit {
        for name in (try? FileSystem.listDirectory(path)) ?? [] { unlink(path + "/" + name) }
        rmdir(path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        try SafetensorsWriter.writeFile(path: file(name), bytes: bytes)
        return file(name)
    }

    func write(_ name: String, text: String) throws -> String { try write(name, Array(text.utf8)) }
}

/// A safetensors file assembled by hand: `header` verbatim after an 8-byte length (`declaredLength` overrides it).
func rawSafetensors(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    let length = declaredLength ?? UInt64(headerBytes.count)
    var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: length >> UInt64(8 * $0)) }
    out += headerBytes
    out += data
    return out
}

/// A copy of a whole file (the map stays alive until the copy is made).
func fileBytes(_ path: String) throws -> [UInt8] {
    let file = try MappedFile(path: path)
    return withExtendedLifetime(file) { Array(file.bytes) }
}

func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).compactMap { i in
        UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16)
    }
}

/// Runs `body`, expecting a GLMError with `code` whose message contains every string of `parts`.
func expectGLMError(_ code: GLMError.Code, _ parts: [String], sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected a GLMError containing \(parts), got success", sourceLocation: sourceLocation)
    } catch let error as GLMError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        for part in parts {
            #expect(error.message.contains(part), "'\(part)' not in: \(error.message)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

func unlinkFile(_ path: String) { unlink(path) }
