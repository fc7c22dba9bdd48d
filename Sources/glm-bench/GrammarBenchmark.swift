import Glibc
import GLMGrammar
import GLMJSON
import GLMSupport
import GLMTokenizer

/// `glm-bench grammar --tokenizer PATH --cases FILE [--out FILE] [--end-id N]`
///
/// Constrained decoding speed. Times are the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which a
/// busy shared machine does not inflate by preempting the benchmark; the wall-clock mask times are recorded too. Each line of the cases file is a JSON object {"name", "schema" (a JSON
/// schema) or "regex", "tokens": [ids of a valid output]}. For each case: the compile time (first compile,
/// and the median of 5 more), then a fresh matcher walks the tokens, timing the mask computed before each
/// token and checking the token is in it; at the end the end id must be allowed. One JSON line per case goes
/// to --out (default stdout): {"name", "compile_ms", "compile_first_ms", "mask_us": [...], "ok", "error"}.
/// tools/bench_grammar.py runs this beside llguidance and xgrammar on the same cases.
func grammarBenchmark(arguments: [String]) throws {
    var tokenizerPath: String?
    var casesPath: String?
    var outPath: String?
    var endID: Int32?
    var i = 0
    while i < arguments.count {
        let flag = arguments[i]
        guard i + 1 < arguments.count else { throw GLMError.invalidArgument("\(flag) needs a value") }
        let value = arguments[i + 1]
        switch flag {
        case "--tokenizer": tokenizerPath = value
        case "--cases": casesPath = value
        case "--out": outPath = value
        case "--end-id": endID = Int32(value)
        default: throw GLMError.invalidArgument("unknown option \(flag)")
        }
        i += 2
    }
    guard let tokenizerPath, let casesPath else {
        throw GLMError.invalidArgument("usage: grammar --tokenizer PATH --cases FILE [--out FILE] [--end-id N]")
    }
    let tokenizer = try Tokenizer.load(path: tokenizerPath)
    let vocabularyStart = threadCPUSeconds()
    let vocabulary = try TokenVocabulary.of(tokenizer)
    let vocabularySeconds = threadCPUSeconds() - vocabularyStart
    var options = ConstraintOptions()
    if let id = endID ?? tokenizer.eosTokenID { options.endTokenIDs = [id] }

    var output = "{\"vocabulary\": {\"size\": \(vocabulary.size), \"build_ms\": \(fixed(vocabularySeconds * 1000, 3))}}\n"
    let text = try FileSystem.readText(casesPath)
    for line in text.split(separator: "\n") where !line.isEmpty {
        let c = try JSONValue.parse(String(line))
        let name = c["name"]?.stringValue ?? "?"
        let constraint: Constraint
        if let schema = c["schema"] {
            constraint = .jsonSchema(schema)
        } else if let regex = c["regex"]?.stringValue {
            constraint = .regex(regex)
        } else {
            throw GLMError.invalidArgument("case \(name) has neither schema nor regex")
        }
        let tokens = (c["tokens"]?.arrayValue ?? []).compactMap { $0.intValue.map { Int32($0) } }
        var record = JSONObject()
        record["name"] = .string(name)
        do {
            let t0 = threadCPUSeconds()
            var grammar = try ConstraintCompiler.compile(constraint, vocabulary: vocabulary, options: options)
            let first = threadCPUSeconds() - t0
            var times: [Double] = []
            for _ in 0..<5 {
                let s = threadCPUSeconds()
                grammar = try ConstraintCompiler.compile(constraint, vocabulary: vocabulary, options: options)
                times.append(threadCPUSeconds() - s)
            }
            times.sort()
            record["compile_first_ms"] = .double(first * 1000)
            record["compile_ms"] = .double(times[times.count / 2] * 1000)
            let matcher = try GrammarMatcher(grammar)
            var words = [UInt32](repeating: 0, count: (vocabulary.size + 31) / 32)
            var maskTimes: [JSONValue] = []
            var maskWall: [JSONValue] = []
            var problem: String?
            for (k, token) in tokens.enumerated() {
                let s = monotonicSeconds(), c = threadCPUSeconds()
                try words.withUnsafeMutableBufferPointer { (w) throws(GLMError) in
                    try matcher.fillMask(w.baseAddress!, words: w.count)
                }
                maskTimes.append(.double((threadCPUSeconds() - c) * 1e6))
                maskWall.append(.double((monotonicSeconds() - s) * 1e6))
                let allowed = words[Int(token) >> 5] & (1 << UInt32(token & 31)) != 0
                if !allowed { problem = "token \(k) (\(token)) not in the mask"; break }
                try matcher.accept(token)
            }
            if problem == nil, let end = options.endTokenIDs.first {
                let s = monotonicSeconds(), c = threadCPUSeconds()
                try words.withUnsafeMutableBufferPointer { (w) throws(GLMError) in
                    try matcher.fillMask(w.baseAddress!, words: w.count)
                }
                maskTimes.append(.double((threadCPUSeconds() - c) * 1e6))
                maskWall.append(.double((monotonicSeconds() - s) * 1e6))
                if words[Int(end) >> 5] & (1 << UInt32(end & 31)) == 0 { problem = "end id not allowed at the end" }
            }
            record["mask_us"] = .array(maskTimes)
            record["mask_wall_us"] = .array(maskWall)
            record["ok"] = .bool(problem == nil)
            if let problem { record["error"] = .string(problem) }
        } catch {
            record["ok"] = .bool(false)
            record["error"] = .string(error.message)
        }
        output += JSONValue.object(record).compactJSON + "\n"
    }
    if let outPath {
        guard let f = fopen(outPath, "w") else { throw GLMError.io("cannot write '\(outPath)'") }
        fputs(output, f)
        fclose(f)
    } else {
        print(output, terminator: "")
    }
}
