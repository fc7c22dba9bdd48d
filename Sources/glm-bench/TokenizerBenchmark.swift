import Glibc
import GLMSupport
import GLMTokenizer

/// `glm-bench tokenizer --tokenizer PATH --text FILE [--runs N] [--ids-out FILE]`
///
/// Loads a tokenizer (tokenizer.json, model directory or .gguf) and reports the load time and the resident
/// memory it added, then encodes the whole text file (one call, one thread) `runs` times and reports the best
/// throughput. `--ids-out` writes the ids as little-endian int32 so tools/bench_tokenizer.py can compare them
/// with HF tokenizers'. Output is one `key=value` per line.
func tokenizerBenchmark(arguments: [String]) throws {
    var tokenizerPath: String? = nil
    var textPath: String? = nil
    var idsOut: String? = nil
    var runs = 3
    var i = 0
    while i < arguments.count {
        let flag = arguments[i]
        guard i + 1 < arguments.count else { throw GLMError.invalidArgument("\(flag) needs a value") }
        let value = arguments[i + 1]
        switch flag {
        case "--tokenizer": tokenizerPath = value
        case "--text": textPath = value
        case "--ids-out": idsOut = value
        case "--runs":
            guard let n = Int(value), n > 0 else { throw GLMError.invalidArgument("--runs needs a positive integer") }
            runs = n
        default: throw GLMError.invalidArgument("unknown option \(flag)")
        }
        i += 2
    }
    guard let tokenizerPath, let textPath else {
        throw GLMError.invalidArgument("usage: tokenizer --tokenizer PATH --text FILE [--runs N] [--ids-out FILE]")
    }

    let rssBefore = residentBytes()
    let loadStart = monotonicSeconds()
    let tokenizer = try Tokenizer.load(path: tokenizerPath)
    let loadSeconds = monotonicSeconds() - loadStart
    let rssAfter = residentBytes()
    print("tokenizer=\(tokenizerPath)")
    print("vocab_size=\(tokenizer.vocabSize)")
    print("load_ms=\(formatted(loadSeconds * 1000))")
    print("load_rss_mb=\(formatted(Double(rssAfter - rssBefore) / 1e6))")

    let text = try FileSystem.readText(textPath)
    let bytes = text.utf8.count
    var best = Double.infinity
    var ids: [Int32] = []
    for _ in 0..<runs {
        let start = monotonicSeconds()
        ids = try tokenizer.encode(text, addSpecialTokens: false)
        best = min(best, monotonicSeconds() - start)
    }
    print("text_mb=\(formatted(Double(bytes) / 1e6))")
    print("tokens=\(ids.count)")
    print("encode_s=\(formatted(best))")
    print("encode_mb_s=\(formatted(Double(bytes) / 1e6 / best))")
    print("peak_rss_mb=\(formatted(Double(residentBytes()) / 1e6))")

    if let idsOut {
        guard let f = fopen(idsOut, "wb") else { throw GLMError.io("cannot write '\(idsOut)'") }
        defer { fclose(f) }
        let written = ids.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        guard written == ids.count * 4 else { throw GLMError.io("short write to '\(idsOut)'") }
    }
}

/// Resident set size from /proc/self/statm (second field, in pages).
private func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    guard withUnsafeMutablePointer(to: &size, { s in
        withUnsafeMutablePointer(to: &resident) { r in
            withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        }
    }) == 2 else { return 0 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

private func formatted(_ x: Double) -> String {
    let scaled = (x * 1000).rounded() / 1000
    return String(scaled)
}
