import Glibc
import GLMGeneration
import GLMModel
import GLMSupport

/// `glm-bench threads <model> [--threads 1,2] [--spin 0,200] [--tokens N] [--rounds R]`: greedy decode speed of one
/// model under each (threads, pool spin) pair, side by side in one run. The pairs take turns, round after round
/// (so a noisy neighbour hits them alike), each round decoding N tokens from the same prompt in its own session;
/// the median round per pair is reported with the process CPU time per token (spinning workers burn CPU while
/// they wait: the price of not sleeping) and the ratio to the same thread count with the first spin value.
/// The spin is `ThreadPool.spinMicroseconds` (GLM_THREAD_SPIN_US): how long an idle worker polls for the next
/// parallel region before it sleeps on a condition variable.
func threadsBenchmark(arguments: [String]) throws {
    let usage = "usage: threads <model> [--threads 1,2] [--spin 0,200] [--tokens N] [--rounds R]"
    var positional: [String] = []
    var threadCounts = [1, 2], spins = [0, ThreadPool.defaultSpinMicroseconds]
    var tokens = 64, rounds = 7
    func list(_ text: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw GLMError.invalidArgument(usage) }
        return values.compactMap { $0 }
    }
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        guard argument.hasPrefix("--") else { positional.append(argument); index += 1; continue }
        guard index + 1 < arguments.count else { throw GLMError.invalidArgument(usage) }
        let value = arguments[index + 1]
        index += 2
        switch argument {
        case "--threads": threadCounts = try list(value)
        case "--spin": spins = try list(value)
        case "--tokens": tokens = Int(value) ?? 0
        case "--rounds": rounds = Int(value) ?? 0
        default: throw GLMError.invalidArgument(usage)
        }
    }
    guard positional.count == 1, tokens >= 1, rounds >= 1, threadCounts.allSatisfy({ $0 >= 1 }) else {
        throw GLMError.invalidArgument(usage)
    }
    let directory = positional[0]
    let model = try Model.load(directory: directory, threads: threadCounts.max() ?? 1)
    print("model: \(directory)  \(model.weightType)  \(model.parameterCount) parameters")
    print("CPU: \(CPUFeatures.host.brand)  online CPUs \(ThreadPool.defaultThreadCount)")

    let vocab = model.config.vocabSize
    var random = SeededRandom(seed: 7)
    let prompt: [Int32] = (0..<16).map { _ in Int32(truncatingIfNeeded: random.next() % UInt64(vocab)) }
    let pool = ThreadPool.shared
    let configured = pool.spinMicroseconds
    defer { pool.spinMicroseconds = configured }

    struct Pair: Hashable { let threads: Int; let spin: Int }
    var pairs: [Pair] = []
    for t in threadCounts { for s in spins { pairs.append(Pair(threads: t, spin: s)) } }
    var sessions: [Int: Session] = [:]
    for t in Set(threadCounts) {
        let session = try Session(model: model, contextLength: prompt.count + tokens + 1, threads: t)
        try session.evaluate(tokens: prompt)
        sessions[t] = session
    }
    func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }
    var wall: [Pair: [Double]] = [:], cpu: [Pair: [Double]] = [:]
    var outputs: [Pair: [Int32]] = [:]
    for round in -1..<rounds {            // round -1: untimed, pages the weights in and starts the workers
        for pair in pairs {
            guard let session = sessions[pair.threads] else { continue }
            pool.spinMicroseconds = pair.spin
            try session.truncate(to: prompt.count - 1)
            var next = prompt[prompt.count - 1]
            var produced: [Int32] = []
            produced.reserveCapacity(tokens)
            let startWall = monotonicSeconds(), startCPU = cpuSeconds()
            for _ in 0..<tokens {
                let input = next
                next = try withUnsafePointer(to: input) { p in
                    argmax(try session.evaluate(tokens: UnsafeBufferPointer(start: p, count: 1)))
                }
                produced.append(next)
            }
            let elapsed = monotonicSeconds() - startWall, used = cpuSeconds() - startCPU
            if round >= 0 {
                wall[pair, default: []].append(elapsed)
                cpu[pair, default: []].append(used)
            }
            outputs[pair] = produced
        }
    }
    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }
    print("\(tokens) tokens per round, \(rounds) rounds, median round per row")
    print("")
    print("| threads | spin µs | decode tok/s | CPU ms / token | vs spin \(spins[0]) µs | same tokens |")
    print("|---|---|---|---|---|---|")
    for pair in pairs {
        let rate = Double(tokens) / median(wall[pair] ?? [])
        let base = Double(tokens) / median(wall[Pair(threads: pair.threads, spin: spins[0])] ?? [])
        let same = outputs[pair] == outputs[pairs[0]]
        print("| \(pair.threads) | \(pair.spin) | \(fixed(rate, 1)) | \(fixed(median(cpu[pair] ?? []) * 1000 / Double(tokens), 3)) |"
            + " \(fixed(rate / base, 2)) | \(same ? "yes" : "no") |")
    }
}
