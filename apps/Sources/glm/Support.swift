import ArgumentParser
import CGLM
import GLMClient
import Glibc

// What every subcommand shares: files, terminal output, the model options, errors and exit codes.

/// Exit codes (sysexits.h, as ArgumentParser's 64 for a bad command line): a script can tell a bad input from a
/// missing file from an unsupported model from a bug.
enum Exit {
    static let failure: Int32 = 1        // anything else, e.g. a request that failed part way
    static let usage: Int32 = 64         // EX_USAGE: the command line is wrong (ArgumentParser's validation code)
    static let dataError: Int32 = 65     // EX_DATAERR: malformed input (JSON, template, request, token ids)
    static let noInput: Int32 = 66       // EX_NOINPUT: a file could not be opened or read
    static let unavailable: Int32 = 69   // EX_UNAVAILABLE: well-formed but unsupported (model type, CPU)
    static let software: Int32 = 70      // EX_SOFTWARE: a bug in libglm or glm
    static let osError: Int32 = 71       // EX_OSERR: out of memory, threads, sockets
    static let interrupted: Int32 = 130  // cancelled

    static func code(for status: glm_status) -> Int32 {
        switch status {
        case GLM_ERR_INVALID_ARGUMENT, GLM_ERR_FORMAT, GLM_ERR_TEMPLATE, GLM_ERR_LIMIT_EXCEEDED, GLM_ERR_CONTEXT_FULL:
            return dataError
        case GLM_ERR_IO: return noInput
        case GLM_ERR_UNSUPPORTED: return unavailable
        case GLM_ERR_OUT_OF_MEMORY: return osError
        case GLM_ERR_CANCELLED: return interrupted
        case GLM_ERR_INTERNAL: return software
        default: return failure
        }
    }
}

/// A failure that ends the command with a message and an exit code.
struct CommandFailure: Error {
    let message: String
    let code: Int32

    init(_ message: String, code: Int32 = Exit.failure) {
        self.message = message
        self.code = code
    }

    /// "what we were doing: GLM_ERR_X: libglm's message".
    init(_ doing: String, _ error: any Error) {
        if let failure = error as? CommandFailure {
            self.init("\(doing): \(failure.message)", code: failure.code)
        } else if let call = error as? GLMCallError {
            self.init("\(doing): \(call)", code: Exit.code(for: call.status))
        } else {
            self.init("\(doing): \(error)")
        }
    }
}

/// Runs a command body: a CommandFailure prints "glm: error: ..." on stderr and exits with its code.
func guarded(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CommandFailure {
        Terminal.error("glm: error: \(failure.message)")
        throw ExitCode(failure.code)
    } catch let error as GLMCallError {
        Terminal.error("glm: error: \(error)")
        throw ExitCode(Exit.code(for: error.status))
    }
}

enum Terminal {
    static let stdoutIsTTY = isatty(1) == 1
    static let stderrIsTTY = isatty(2) == 1

    static func out(_ text: String) {
        fputs(text, stdout)
        fflush(stdout)
    }

    static func err(_ text: String) {
        fputs(text, stderr)
        fflush(stderr)
    }

    static func error(_ line: String) { err(line + "\n") }

    static let dim = "\u{1B}[2m"
    static let reset = "\u{1B}[0m"
}

enum Files {
    /// The whole file as UTF-8 text ("-" is standard input).
    static func read(_ path: String, what: String) throws -> String {
        let file: UnsafeMutablePointer<FILE>? = path == "-" ? stdin : fopen(path, "rb")
        guard let file else {
            throw CommandFailure("cannot open \(what) '\(path)': \(String(cString: strerror(errno)))", code: Exit.noInput)
        }
        defer { if path != "-" { fclose(file) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(file) != 0 {
                    throw CommandFailure("cannot read \(what) '\(path)': \(String(cString: strerror(errno)))",
                                         code: Exit.noInput)
                }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readJSON(_ path: String, what: String) throws -> JSON {
        let text = try read(path, what: what)
        do {
            return try JSON.parse(text)
        } catch {
            throw CommandFailure("\(what) '\(path)' is not valid JSON: \(error)", code: Exit.dataError)
        }
    }

    /// An OpenAI tools list from a file: a list of tools, or an object holding "tools".
    static func readTools(_ path: String) throws -> JSON {
        let json = try readJSON(path, what: "tools file")
        if case .array = json { return json }
        if let tools = json["tools"], case .array = tools { return tools }
        throw CommandFailure("tools file '\(path)' must hold a list of OpenAI tools (or {\"tools\": [...]})",
                             code: Exit.dataError)
    }

    /// Messages from a file: a list of messages, or a whole chat request object (its other fields kept).
    static func readChatRequest(_ path: String) throws -> JSON {
        let json = try readJSON(path, what: "messages file")
        if case .array = json { return .object([("messages", json)]) }
        guard case .object = json, json["messages"] != nil else {
            throw CommandFailure("messages file '\(path)' must hold a list of messages or a request with \"messages\"",
                                 code: Exit.dataError)
        }
        return json
    }
}

/// Options for loading a model, shared by the commands that run one.
struct ModelOptions: ParsableArguments {
    @Option(help: "Threads per session (0: libglm's default, the number of CPUs).")
    var threads: Int = 0

    @Option(help: "Prefill matrix products: auto, packed or openblas.")
    var gemm: String = "auto"

    @Option(help: "Kernel path: auto, avx2 or avx512.")
    var kernels: String = "auto"

    @Option(help: "How bf16 weights multiply: auto (bf16 for GGUF files, f32 for checkpoints), f32 (exact products) or bf16 (inputs rounded to bf16 as llama.cpp does; AVX-512 BF16 where the CPU has it).")
    var bf16Inputs: String = "auto"

    @Flag(help: "Read every page of the model's files into memory while loading (as llama.cpp's mmap load does), so that the first tokens do not wait on page faults or the disk.")
    var populate = false

    @Flag(name: .shortAndLong, help: "No progress messages on stderr.")
    var quiet = false

    func validate() throws {
        guard threads >= 0 && threads <= 1024 else { throw ValidationError("--threads must be 0...1024") }
        guard GEMMChoice(rawValue: gemm) != nil else { throw ValidationError("--gemm must be auto, packed or openblas") }
        guard KernelChoice(rawValue: kernels) != nil else { throw ValidationError("--kernels must be auto, avx2 or avx512") }
        guard BF16InputChoice(rawValue: bf16Inputs) != nil else {
            throw ValidationError("--bf16-inputs must be auto, f32 or bf16")
        }
    }

    func progress(_ text: String) { if !quiet { Terminal.err(text) } }

    /// Loads the model, saying so on stderr (loading maps the weights; it can take a while on a large model).
    func load(_ path: String) throws -> Model {
        progress("loading \(path) ... ")
        let start = Clock.now()
        do {
            let model = try Model(path: path, threads: threads, gemm: GEMMChoice(rawValue: gemm) ?? .auto,
                                  kernels: KernelChoice(rawValue: kernels) ?? .auto,
                                  bf16Inputs: BF16InputChoice(rawValue: bf16Inputs) ?? .auto, populate: populate)
            progress(String(format1: Clock.now() - start) + " s\n")
            return model
        } catch {
            progress("failed\n")
            throw CommandFailure("cannot load the model '\(path)'", error)
        }
    }
}

enum Clock {
    /// Monotonic seconds.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}

extension String {
    /// A number with `digits` decimals (no Foundation).
    init(format1 value: Double, digits: Int = 2) {
        guard value.isFinite else { self = "\(value)"; return }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int(rounded / scale)
        var fraction = String(Int(rounded) - whole * Int(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        self = (value < 0 && rounded != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + fraction : "")
    }
}

/// Human sizes: 1.2 MiB.
func bytesText(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format1: value) + " " + units[unit]
}

/// Human counts: 1.23 M.
func countText(_ n: Int) -> String {
    let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
    for (scale, unit) in units where Double(n) >= scale { return String(format1: Double(n) / scale) + " " + unit }
    return String(n)
}
