import CFuzzSupport
import Glibc
import GLMSupport

typealias Bytes = UnsafeBufferPointer<UInt8>

/// One fuzz target: `setUp` runs once before fuzzing (fixtures the target needs), `run` once per input. An
/// input the library rejects with a `GLMError` is fine; a trap, a sanitizer report or a broken invariant
/// (`require`) is a finding.
struct FuzzTarget {
    let setUp: () -> Void
    let run: (Bytes) -> Void

    init(setUp: @escaping () -> Void = {}, run: @escaping (Bytes) -> Void) {
        self.setUp = setUp
        self.run = run
    }

    nonisolated(unsafe) static var selected: FuzzTarget?

    static let all: [String: FuzzTarget] = [
        "safetensors": FuzzTarget(run: Targets.safetensors),
        "gguf": FuzzTarget(run: Targets.gguf),
        "gguf-model": FuzzTarget(run: Targets.ggufModel),
        "config": FuzzTarget(run: Targets.config),
        "tokenizer-json": FuzzTarget(run: Targets.tokenizerJSON),
        "tokenize": FuzzTarget(setUp: Targets.loadFixtureTokenizer, run: Targets.tokenize),
        "jinja": FuzzTarget(run: Targets.jinja),
        "chat-request": FuzzTarget(setUp: Targets.loadChatFixtures, run: Targets.chatRequest),
        "stream-parser": FuzzTarget(run: Targets.streamParser),
    ]
}

/// A broken invariant: report it and abort, which libFuzzer records as a crash with the input that caused it.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fputs("glm-fuzz: invariant broken: \(message())\n", stderr)
        abort()
    }
}

/// The loaders read files (they memory-map them): each input is written to one anonymous in-memory file
/// (memfd), reached through /proc/self/fd, so fuzzing touches no disk and leaves nothing behind.
enum InputFile {
    private static let descriptor: Int32 = {
        let fd = memfd_create("glm-fuzz-input", 1 /* MFD_CLOEXEC */)
        if fd < 0 { fatalFuzzError("memfd_create") }
        return fd
    }()

    /// Replaces the file's contents with `data` and returns a path that opens it.
    static func write(_ data: Bytes) -> String {
        let fd = descriptor
        if ftruncate(fd, off_t(data.count)) != 0 { fatalFuzzError("ftruncate") }
        var done = 0
        while done < data.count, let base = data.baseAddress {
            let n = pwrite(fd, base + done, data.count - done, off_t(done))
            if n <= 0 { fatalFuzzError("pwrite") }
            done += n
        }
        return "/proc/self/fd/\(fd)"
    }

    private static func fatalFuzzError(_ call: String) -> Never {
        fputs("glm-fuzz: \(call) failed: \(String(cString: strerror(errno)))\n", stderr)
        exit(1)
    }
}

/// Fixtures, found from this file's place in the repository (Fuzz/Sources/glm-fuzz/).
enum Fixtures {
    static let root: String = {
        var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/") + "/Tests/Fixtures"
    }()
}

extension Bytes {
    /// The bytes before the first `separator` and those after it (nil when it does not occur).
    func split(at separator: UInt8) -> (Bytes, Bytes?) {
        guard let index = firstIndex(of: separator) else { return (self, nil) }
        return (Bytes(rebasing: self[..<index]), Bytes(rebasing: self[(index + 1)...]))
    }

    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Keeps a computed value alive so the optimiser cannot drop the reads that produced it.
@inline(never)
func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

