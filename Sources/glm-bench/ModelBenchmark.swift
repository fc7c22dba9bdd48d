import Glibc
import GLMModel
import GLMNumerics
import GLMSupport

/// `glm-bench model <model dir> <threads> <prompt tokens> <decode tokens> [--gemm packed|openblas|both]
/// [--kernels auto|avx2|avx512|both] [--bf16-inputs auto|f32|bf16|both] [--kv f32|f16|bf16|q8_0] [--batch N]
/// [--depth D1,D2,...] [--populate 0|1]`: prefill and decode speed of
/// the forward pass, the weight bytes one decoded token reads, and the machine's memory bandwidth measured in the
/// same run (the bound decode works against), so the fraction of it that decode reaches is known. `--gemm` picks
/// the prefill GEMM backend (default packed; GLM_GEMM overrides it); `--kernels` the kernel path (default:
/// GLM_KERNELS, else the CPU's best); `--bf16-inputs` how bf16 weights multiply (default: the format's, `BF16Inputs`).
/// `both` runs each on the same prompt and prints their prefill ratio (one option at a time). `--kv`:
/// the KV cache type of keys and values (default f32). `--batch`: the session's tokens per forward chunk (default:
/// the library's). `--populate 1`: load with `Model.populate` (every page mapped in before anything runs; the load
/// time printed includes it). An untimed prefill first pages the weights in.
///
/// `--depth`: llama-bench's `-d` instead of the plain run. Per depth d, a session of d + prompt + decode positions
/// is filled with d tokens (untimed, reported), then the prompt is evaluated at positions d ..< d + prompt (pp),
/// the session truncated back to d and `decode` tokens decoded from there (tg): both measured over a context of d
/// tokens, as llama-bench does, without filling it twice.
func modelBenchmark(arguments: [String]) throws {
    let usage = "usage: model <model dir> <threads> <prompt tokens> <decode tokens> [--gemm packed|openblas|both]"
        + " [--kernels auto|avx2|avx512|both] [--bf16-inputs auto|f32|bf16|both] [--kv f32|f16|bf16|q8_0]"
        + " [--batch N] [--depth D1,D2,...] [--populate 0|1]"
    var batch = 0
    var backends: [GEMMBackend] = [.packed]
    var paths: [KernelPath?] = [nil]
    var bf16Choices: [BF16Inputs?] = [nil]
    var kvType = KVType.f32
    var depths: [Int]?
    var populate = false
    var positional: [String] = []
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        guard argument.hasPrefix("--") else { positional.append(argument); index += 1; continue }
        guard index + 1 < arguments.count else { throw GLMError.invalidArgument(usage) }
        let choice = arguments[index + 1]
        index += 2
        switch argument {
        case "--gemm":
            if choice == "both" { backends = GEMMBackend.allCases }
            else if let backend = GEMMBackend(rawValue: choice) { backends = [backend] }
            else { throw GLMError.invalidArgument(usage) }
        case "--kernels":
            if choice == "both" { paths = KernelPath.available() }
            else if choice == "auto" { paths = [nil] }
            else if let path = KernelPath(rawValue: choice) { paths = [path] }
            else { throw GLMError.invalidArgument(usage) }
        case "--bf16-inputs":
            if choice == "both" { bf16Choices = BF16Inputs.allCases }
            else if choice == "auto" { bf16Choices = [nil] }
            else if let inputs = BF16Inputs(rawValue: choice) { bf16Choices = [inputs] }
            else { throw GLMError.invalidArgument(usage) }
        case "--kv":
            guard let type = KVType(name: choice) else { throw GLMError.invalidArgument(usage) }
            kvType = type
        case "--batch":
            guard let n = Int(choice), n >= 1 else { throw GLMError.invalidArgument(usage) }
            batch = n
        case "--populate":
            guard choice == "0" || choice == "1" else { throw GLMError.invalidArgument(usage) }
            populate = choice == "1"
        case "--depth":
            let list = choice.split(separator: ",").map { Int($0) }
            guard !list.isEmpty, list.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw GLMError.invalidArgument(usage) }
            depths = list.compactMap { $0 }
        default:
            throw GLMError.invalidArgument(usage)
        }
    }
    guard [backends.count, paths.count, bf16Choices.count].filter({ $0 > 1 }).count <= 1 else {
        throw GLMError.invalidArgument("compare the GEMM backends, the kernel paths or the bf16 inputs, one at a time")
    }
    guard positional.count == 4, let threads = Int(positional[1]), let promptLength = Int(positional[2]),
          let decodeCount = Int(positional[3]), threads >= 1, promptLength >= 1, decodeCount >= 1 else {
        throw GLMError.invalidArgument(usage)
    }
    if backends.count > 1, let forced = GEMMBackend.environmentValue, !forced.isEmpty {
        throw GLMError.invalidArgument("--gemm both compares the backends, but GLM_GEMM=\(forced) forces one: unset it")
    }
    let directory = positional[0]

    let start = monotonicSeconds()
    var models: [Model] = []
    for backend in backends {
        for path in paths {
            for inputs in bf16Choices {
                models.append(try Model.load(directory: directory, threads: threads, gemm: backend, kernels: path,
                                             bf16Inputs: inputs, populate: populate))
            }
        }
    }
    let model = models[0]
    let cpu = CPUFeatures.host
    print("model: \(directory)  \(model.weightType)  \(model.parameterCount) parameters  threads \(threads)")
    print("load: \(fixed(monotonicSeconds() - start, 2)) s")
    print("CPU: \(cpu.brand)  features: \(cpu.present.joined(separator: " "))")
    print("kernel paths measured: \(models.map(\.kernelPath.rawValue).joined(separator: ", "))"
        + "  (available: \(KernelPath.available().map(\.rawValue).joined(separator: ", ")))")
    print("OpenBLAS core: \(GEMMBackend.openBLASCoreName)")

    let bandwidth = try measureBandwidth(threads: threads)
    print("memory bandwidth (\(threads) threads): read \(fixed(bandwidth.read / 1e9, 2)) GB/s,"
        + " triad \(fixed(bandwidth.triad / 1e9, 2)) GB/s")
    // The probe's buffers are freed; from here the peak resident set is the model's pages, the sessions and the
    // library's buffers (what llama-bench's peak RSS holds too).
    let peakReset = resetPeakResidentSet()

    let vocab = model.config.vocabSize
    var state: UInt64 = 0x9E3779B97F4A7C15
    let prompt: [Int32] = (0..<promptLength).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int32(truncatingIfNeeded: (state >> 33) % UInt64(vocab))
    }
    try Session(model: model, contextLength: promptLength, threads: threads, batchSize: batch).evaluate(tokens: prompt)

    if let depths {
        for model in models {
            try measureAtDepths(model, depths: depths, prompt: prompt, decodeCount: decodeCount, threads: threads,
                                batch: batch, kv: kvType, bandwidth: bandwidth.read)
        }
        var resources = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &resources)
        print("peak resident memory: \(fixed(Double(resources.ru_maxrss) / 1_048_576, 2)) GiB (mapped weights included)")
        return
    }

    var prefillRates: [Double] = []
    var sessionBytes = 0
    for model in models {
        let result = try measure(model, prompt: prompt, decodeCount: decodeCount, threads: threads, batch: batch,
                                 kv: kvType, bandwidth: bandwidth.read)
        prefillRates.append(result.prefillRate)
        sessionBytes = max(sessionBytes, result.sessionBytes)
    }
    let files = modelFileBytes(directory)
    print("peak RSS\(peakReset ? " after the bandwidth probe" : " (whole run: the peak could not be reset)"):"
        + " \(fixed(Double(peakResidentBytes()) / 1e6, 1)) MB; model files \(fixed(Double(files) / 1e6, 1)) MB,"
        + " session (KV cache and buffers) \(fixed(Double(sessionBytes) / 1e6, 1)) MB;"
        + " peak / (files + session) = \(fixed(Double(peakResidentBytes()) / Double(max(1, files + sessionBytes)), 3))")
    if prefillRates.count == 2 && backends.count == 2 {    // GEMMBackend.allCases: packed, openblas
        print("prefill openblas / packed: \(fixed(prefillRates[1] / prefillRates[0], 3))")
    } else if prefillRates.count == 2 && paths.count == 2 { // KernelPath.available(): avx2, avx512
        print("prefill avx512 / avx2: \(fixed(prefillRates[1] / prefillRates[0], 3))")
    } else if prefillRates.count == 2 {                     // BF16Inputs.allCases: f32, bf16
        print("prefill bf16 inputs / f32 inputs: \(fixed(prefillRates[1] / prefillRates[0], 3))")
    }
}

/// Prefill of `prompt`, then greedy decode of `decodeCount` tokens, on a fresh session of `model`; prints both
/// speeds and returns the prefill tokens/s and the session's bytes (KV cache and buffers).
private func measure(_ model: Model, prompt: [Int32], decodeCount: Int, threads: Int, batch: Int, kv: KVType,
                     bandwidth: Double) throws -> (prefillRate: Double, sessionBytes: Int) {
    let gemm = "\(model.gemmBackend.rawValue), \(model.kernelPath.rawValue), bf16 inputs \(model.bf16Inputs.rawValue)"
    let promptLength = prompt.count
    let session = try Session(model: model, contextLength: promptLength + decodeCount, threads: threads,
                              batchSize: batch, keyType: kv, valueType: kv)
    print("session: batch \(session.batchSize) tokens per forward chunk")
    var start = monotonicSeconds()
    let promptLogits = try session.evaluate(tokens: prompt)
    let prefillSeconds = monotonicSeconds() - start
    let prefillRate = Double(promptLength) / prefillSeconds
    print("prefill (\(gemm)): \(promptLength) tokens in \(fixed(prefillSeconds, 3)) s = \(fixed(prefillRate, 2)) tokens/s")

    // Greedy decode through the no-copy API (the library allocates nothing per token; neither does this loop).
    let next = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    defer { next.deallocate() }
    next[0] = argmax(promptLogits)
    start = monotonicSeconds()
    for _ in 0..<decodeCount {
        next[0] = argmax(try session.evaluate(tokens: UnsafeBufferPointer(start: next, count: 1)))
    }
    let decodeSeconds = monotonicSeconds() - start
    let decodeRate = Double(decodeCount) / decodeSeconds
    let weightBytes = model.weightBytesPerDecodedToken
    let c = model.config
    // The KV cache read per token at the average decode position (keys and values of every layer).
    let averagePosition = promptLength + decodeCount / 2
    let cacheBytes = averagePosition
        * Session.kvBytesPerToken(config: c, hasMTP: false, keyType: kv, valueType: kv).layers
    let bytesPerToken = Double(weightBytes + cacheBytes)
    print("decode (\(gemm)): \(decodeCount) tokens in \(fixed(decodeSeconds, 3)) s = \(fixed(decodeRate, 2)) tokens/s")
    print("bytes per decoded token: \(fixed(Double(weightBytes) / 1e6, 1)) MB weights"
        + " + \(fixed(Double(cacheBytes) / 1e6, 1)) MB KV cache")
    print("decode reads \(fixed(bytesPerToken * decodeRate / 1e9, 2)) GB/s ="
        + " \(fixed(100 * bytesPerToken * decodeRate / bandwidth, 1))% of the measured read bandwidth")
    return (prefillRate, session.allocatedBytes)
}

/// llama-bench's `-d` (see `modelBenchmark`): per depth, fill (untimed), prefill of `prompt` at that depth,
/// truncate back, greedy decode of `decodeCount` tokens. Prints one line per depth and, for decode, the rate that
/// depth 0's decode would keep if the only extra cost were reading d more positions of KV cache at `bandwidth`.
private func measureAtDepths(_ model: Model, depths: [Int], prompt: [Int32], decodeCount: Int, threads: Int,
                             batch: Int, kv: KVType, bandwidth: Double) throws {
    let c = model.config
    let kvPerToken = Session.kvBytesPerToken(config: c, hasMTP: false, keyType: kv, valueType: kv).layers
    print("depth runs: \(model.gemmBackend.rawValue), \(model.kernelPath.rawValue), bf16 inputs \(model.bf16Inputs.rawValue), KV \(kv.name)/\(kv.name)"
        + " (\(kvPerToken) bytes per position), pp\(prompt.count), tg\(decodeCount), threads \(threads)")
    var state: UInt64 = 0x243F6A8885A308D3
    var decodeAtZero: Double?
    let next = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    defer { next.deallocate() }
    for depth in depths {
        let context = depth + prompt.count + decodeCount
        let session = try Session(model: model, contextLength: context, threads: threads, batchSize: batch,
                                  mtp: false, keyType: kv, valueType: kv)
        let fill: [Int32] = (0..<depth).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32(truncatingIfNeeded: (state >> 33) % UInt64(c.vocabSize))
        }
        var start = monotonicSeconds()
        if depth > 0 { try session.evaluate(tokens: fill, logits: .none) }
        let fillSeconds = monotonicSeconds() - start

        start = monotonicSeconds()
        let logits = try session.evaluate(tokens: prompt)
        let prefillRate = Double(prompt.count) / (monotonicSeconds() - start)

        try session.truncate(to: depth)
        next[0] = argmax(logits)
        start = monotonicSeconds()
        for _ in 0..<decodeCount {
            next[0] = argmax(try session.evaluate(tokens: UnsafeBufferPointer(start: next, count: 1)))
        }
        let decodeRate = Double(decodeCount) / (monotonicSeconds() - start)
        if depth == 0 { decodeAtZero = decodeRate }
        var line = "depth \(depth): pp\(prompt.count) \(fixed(prefillRate, 2)) tokens/s, tg\(decodeCount)"
            + " \(fixed(decodeRate, 2)) tokens/s; session \(MemoryLimit.format(session.allocatedBytes)) (KV"
            + " \(MemoryLimit.format(context * kvPerToken))); fill \(depth) tokens \(fixed(fillSeconds, 1)) s"
        if let base = decodeAtZero, depth > 0 {
            // The KV cache at the average decode position beyond depth 0's, read once per token.
            let extra = Double((depth + decodeCount / 2) * kvPerToken - (decodeCount / 2) * kvPerToken)
            let bound = 1 / (1 / base + extra / bandwidth)
            line += "; tg bound from depth 0 + KV bytes at the read bandwidth \(fixed(bound, 2)) tokens/s"
                + " (reached \(fixed(100 * decodeRate / bound, 1))%)"
        }
        print(line)
    }
}

/// Streaming read and STREAM-triad bandwidth over buffers much larger than the last-level cache, split over
/// `threads` threads; best of three passes.
private func measureBandwidth(threads: Int) throws -> (read: Double, triad: Double) {
    let count = 128 << 20    // 512 MiB per buffer
    let a = try FloatBuffer(count: count, purpose: "bandwidth probe"), b = try FloatBuffer(count: count, purpose: "bandwidth probe")
    let c = try FloatBuffer(count: count, purpose: "bandwidth probe")
    let workers = Workers(threads: threads)
    let parts = threads * 8, part = count / parts
    workers.run(tasks: parts) { _, i in
        for j in (i * part)..<((i + 1) * part) { a.pointer[j] = 1; b.pointer[j] = 2; c.pointer[j] = 3 }
    }
    var read = 0.0, triad = 0.0
    var sink: Float = 0
    let sums = try FloatBuffer(count: parts, purpose: "bandwidth probe")
    for _ in 0..<3 {
        var start = monotonicSeconds()
        workers.run(tasks: parts) { _, i in sums.pointer[i] = BandwidthProbe.read(b.pointer + i * part, count: part) }
        read = max(read, Double(parts * part * 4) / (monotonicSeconds() - start))
        sink += sums.pointer[0]
        start = monotonicSeconds()
        workers.run(tasks: parts) { _, i in
            BandwidthProbe.triad(a.pointer + i * part, b.pointer + i * part, c.pointer + i * part, scale: 0.5, count: part)
        }
        triad = max(triad, Double(3 * parts * part * 4) / (monotonicSeconds() - start))
    }
    if sink.isNaN { print("") }
    return (read, triad)
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current resident set (`/proc/self/clear_refs`, value 5).
private func resetPeakResidentSet() -> Bool {
    guard let f = fopen("/proc/self/clear_refs", "w") else { return false }
    defer { fclose(f) }
    return fputs("5", f) >= 0
}

/// VmHWM of /proc/self/status in bytes (0 if unreadable).
private func peakResidentBytes() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(cString: line)
        if text.hasPrefix("VmHWM:") {
            let digits = text.dropFirst(6).filter { $0.isNumber }
            return (Int(String(digits)) ?? 0) * 1024
        }
    }
    return 0
}

/// Bytes of the model's weight files: the .gguf file given (with the other parts of a split set), or the
/// .safetensors / .gguf files of the directory.
private func modelFileBytes(_ path: String) -> Int {
    func size(_ file: String) -> Int {
        var st = stat()
        return stat(file, &st) == 0 ? Int(st.st_size) : 0
    }
    if path.hasSuffix(".gguf") {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // name-00001-of-00003.gguf: every part with the same prefix and count
        let tail = Array(name.utf8.suffix(20))   // "-00001-of-00003.gguf"
        let isDigit = { (c: UInt8) in c >= 48 && c <= 57 }
        if tail.count == 20, tail[0] == 45, tail[1...5].allSatisfy(isDigit), String(decoding: tail[6...9], as: UTF8.self) == "-of-",
           tail[10...14].allSatisfy(isDigit), let names = try? FileSystem.listDirectory(directory) {
            let prefix = String(name.dropLast(20)), count = String(decoding: tail[6...], as: UTF8.self)
            return names.filter { $0.hasPrefix(prefix + "-") && $0.hasSuffix(count) && $0.count == name.count }
                .reduce(0) { $0 + size(directory + "/" + $1) }
        }
        return size(path)
    }
    guard let names = try? FileSystem.listDirectory(path) else { return 0 }
    return names.filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".gguf") }.reduce(0) { $0 + size(path + "/" + $1) }
}
