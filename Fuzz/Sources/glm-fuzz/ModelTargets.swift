import Glibc
import GLMFormats
import GLMModel
import GLMSupport

/// The model loader reads a GGUF model by path, and a split set by its parts' names (`m-00001-of-00002.gguf`), so
/// this target writes its inputs into a private directory (in /dev/shm: memory, not disk), removed at exit.
enum ModelFiles {
    static let directory: String = {
        for base in ["/dev/shm", "/tmp"] {
            var template = Array("\(base)/glm-fuzz-model-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
                guard let start = buffer.baseAddress, let dir = mkdtemp(start) else { return nil }
                return String(cString: dir)
            }
            if let made {
                atexit { ModelFiles.removeAll() }
                return made
            }
        }
        fputs("glm-fuzz: cannot make a directory for model inputs\n", stderr)
        exit(1)
    }()
    static let single = "m.gguf"
    static let parts = ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]

    static func path(_ name: String) -> String { directory + "/" + name }

    static func write(_ name: String, _ data: Bytes) {
        let fd = open(path(name), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        if fd < 0 { fail("open \(name)") }
        var done = 0
        while done < data.count, let base = data.baseAddress {
            let n = Glibc.write(fd, base + done, data.count - done)
            if n <= 0 { fail("write \(name)") }
            done += n
        }
        close(fd)
    }

    static func remove(_ name: String) { unlink(path(name)) }

    static func removeAll() {
        for name in [single] + parts { remove(name) }
        rmdir(directory)
    }

    private static func fail(_ what: String) -> Never {
        fputs("glm-fuzz: \(what) in \(directory) failed: \(String(cString: strerror(errno)))\n", stderr)
        exit(1)
    }
}

extension Targets {
    /// A GGUF model through `Model.load` (GGUFModel's metadata → config, tensor views, split sets; the weight
    /// loader's shape and type checks), then, if it loads, a short forward pass: a 3-token prefill with logits for
    /// every position, one decode step, and MTP drafts when the model has the layer. Invariants: the logits have
    /// the vocabulary's size.
    ///
    /// Layout: a mode byte, then the file(s). Mode & 3 = 0: one file, `m.gguf`. Otherwise a split set of two: a
    /// u32 (little-endian) length of part 1, part 1, then part 2 (the rest), opened through part 1's name (1),
    /// part 2's (2) or the directory (3). A length past the end puts everything in part 1.
    static func ggufModel(_ data: Bytes) {
        guard let mode = data.first else { return }
        let body = Bytes(rebasing: data[1...])
        let path: String
        if mode & 3 == 0 {
            for name in ModelFiles.parts { ModelFiles.remove(name) }
            ModelFiles.write(ModelFiles.single, body)
            path = ModelFiles.path(ModelFiles.single)
        } else {
            guard body.count >= 4 else { return }
            let declared = body.prefix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let rest = Bytes(rebasing: body[4...])
            let length = min(declared, rest.count)
            ModelFiles.remove(ModelFiles.single)
            ModelFiles.write(ModelFiles.parts[0], Bytes(rebasing: rest[..<length]))
            ModelFiles.write(ModelFiles.parts[1], Bytes(rebasing: rest[length...]))
            switch mode & 3 {
            case 1: path = ModelFiles.path(ModelFiles.parts[0])
            case 2: path = ModelFiles.path(ModelFiles.parts[1])
            default: path = ModelFiles.directory
            }
        }
        // One thread: the fuzzer measures the loader and the kernels, not the thread pool.
        guard let model = try? Model.load(directory: path, threads: 1) else { return }
        let vocab = model.config.vocabSize
        require(vocab > 0, "a model with vocabulary size \(vocab) loaded")
        let tokens: [Int32] = [0, Int32(clamping: vocab - 1), Int32(clamping: vocab / 2)]
        guard let session = try? Session(model: model, contextLength: 8, threads: 1) else { return }
        if let logits = try? session.evaluate(tokens: tokens, logits: .all) {
            require(logits.count == tokens.count * vocab, "prefill gave \(logits.count) logits for \(tokens.count) × \(vocab)")
            consume(logits.reduce(0, +))
        }
        if let logits = try? session.evaluate(tokens: [1 % Int32(clamping: vocab)], logits: .last) {
            require(logits.count == vocab, "decode gave \(logits.count) logits for a vocabulary of \(vocab)")
        }
        if model.hasMTP, let drafts = try? session.mtpLogits(nextTokens: Array(tokens[1...]) + [0], logits: .all) {
            require(drafts.count == tokens.count * vocab, "MTP gave \(drafts.count) logits for \(tokens.count) × \(vocab)")
        }
    }
}
