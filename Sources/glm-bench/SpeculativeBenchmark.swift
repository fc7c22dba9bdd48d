import GLMFormats
import GLMGeneration
import GLMJSON
import GLMModel
import GLMSupport
import GLMTemplate
import GLMTokenizer
import Glibc

// MTP speculative decoding: what a step costs (`speculative-cost`, any model with an MTP layer, random weights
// fine) and what it gains on real conversations (`speculative`, a trained model).

/// `glm-bench speculative-cost <model dir> <threads> [--prompt N] [--reps N]`: the time of one decoded token, of
/// verifying k + 1 tokens in one forward pass (k = 1, 2, 3), and of the MTP drafts (the first, which also brings
/// the MTP cache up to date, and each chained one), each the median over --reps repetitions at the same position
/// with fresh random tokens (so the routed experts differ as between real consecutive tokens of a random model;
/// a trained model's consecutive tokens share more experts, so verification costs no more than measured here).
/// Each pass is also timed without the lm_head product (`logits: .none`), which splits it into layers and head;
/// from those parts it estimates the same ratios for the full GLM-4.7 (89 MoE layers + lm_head; its 3 dense
/// layers, under 2% of the bytes, left out). Speed-up at acceptance a: tokens per step (1 - a^(k+1)) / (1 - a)
/// divided by the step's cost relative to one decoded token.
func speculativeCostBenchmark(arguments: [String]) throws {
    let usage = "usage: speculative-cost <model dir> <threads> [--prompt N] [--reps N]"
    var positional: [String] = []
    var promptLength = 64, reps = 9
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument.hasPrefix("--") {
            guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value >= 1 else {
                throw GLMError.invalidArgument(usage)
            }
            switch argument {
            case "--prompt": promptLength = max(2, value)
            case "--reps": reps = value
            default: throw GLMError.invalidArgument(usage)
            }
            index += 2
        } else {
            positional.append(argument)
            index += 1
        }
    }
    guard positional.count == 2, let threads = Int(positional[1]), threads >= 1 else {
        throw GLMError.invalidArgument(usage)
    }
    let model = try Model.load(directory: positional[0], threads: threads)
    guard model.hasMTP else { throw GLMError.invalidArgument("\(positional[0]) has no MTP layer") }
    let c = model.config
    print("model: \(positional[0])  \(model.weightType)  \(c.numHiddenLayers) layers + MTP  threads \(threads)")
    print("CPU: \(CPUFeatures.host.brand)")
    let vocab = c.vocabSize
    var random = SeededRandom(seed: 42)
    func token() -> Int32 { Int32(truncatingIfNeeded: random.next() % UInt64(vocab)) }
    let prompt = (0..<promptLength).map { _ in token() }
    let session = try Session(model: model, contextLength: promptLength + 8, threads: threads, mtp: true)
    try session.evaluate(tokens: prompt, logits: .none)
    try session.mtpLogits(nextTokens: Array(prompt[1...]), logits: .last)   // MTP cache at promptLength - 1
    let P = promptLength

    func timed(_ body: () throws -> Void) rethrows -> Double {
        let start = monotonicSeconds()
        try body()
        return monotonicSeconds() - start
    }
    // Rebuilds the state every measurement starts from: main cache at P, MTP cache at P - 1.
    func restore() throws {
        try session.truncate(to: P - 1)
        try session.evaluate(tokens: [prompt[P - 1]], logits: .none)
    }
    var passes: [String: [Double]] = [:]   // "all n" / "none n" / "draft1" / "draftNext"
    for rep in -2..<reps {                  // two untimed rounds page the weights in
        let tokens = (0..<4).map { _ in token() }
        for n in 1...4 {
            for withHead in [true, false] {
                let rows: Session.LogitRows = withHead ? .all : .none
                let t = try timed { try session.evaluate(tokens: Array(tokens[0..<n]), logits: rows) }
                try session.truncate(to: P)
                if rep >= 0 { passes["\(withHead ? "all" : "none") \(n)", default: []].append(t) }
            }
        }
        let first = try timed {
            _ = try [tokens[0]].withUnsafeBufferPointer { try session.mtpDraftFirst(nextTokens: $0) }
        }
        var next: [Double] = []
        for j in 1..<3 { next.append(try timed { _ = try session.mtpDraftNext(token: tokens[j]) }) }
        try restore()
        if rep >= 0 {
            passes["draft1", default: []].append(first)
            passes["draftNext", default: []].append(contentsOf: next)
        }
    }
    func median(_ key: String) -> Double {
        let values = (passes[key] ?? []).sorted()
        return values.isEmpty ? .nan : values[values.count / 2]
    }
    let decode = median("all 1")
    let draftFirst = median("draft1"), draftNext = median("draftNext")
    print("position \(P), median of \(reps): decode 1 token \(fixed(decode * 1000, 3)) ms"
        + " (layers \(fixed(median("none 1") * 1000, 3)) ms + lm_head \(fixed((decode - median("none 1")) * 1000, 3)) ms);"
        + " MTP draft: first \(fixed(draftFirst * 1000, 3)) ms, chained \(fixed(draftNext * 1000, 3)) ms")

    print("")
    print("| tokens in the pass | whole pass | layers (no lm_head) | lm_head |")
    print("|---|---|---|---|")
    for n in 1...4 {
        let all = median("all \(n)"), none = median("none \(n)")
        print("| \(n) | \(fixed(all * 1000, 3)) ms | \(fixed(none * 1000, 3)) ms | \(fixed((all - none) * 1000, 3)) ms |")
    }
    print("")

    // The full model from the parts: every main layer here is a MoE layer (make_synthetic_glm47.py --layers 1
    // --dense 0 --mtp), GLM-4.7 has 89 of them; lm_head is the same.
    let moeLayers = c.numHiddenLayers - c.firstKDenseReplace
    let scale = moeLayers > 0 ? 89.0 / Double(moeLayers) : 0
    func fullModel(_ n: Int) -> Double {
        let layers = median("none \(n)"), head = median("all \(n)") - layers
        return layers * scale + head
    }
    let fullDecode = fullModel(1)
    print("GLM-4.7 estimate (89 MoE layers + lm_head): decode 1 token \(fixed(fullDecode * 1000, 1)) ms")
    print("")
    print("| k | verify k+1 / decode 1 | draft / decode 1 | step / decode 1 | speed-up a=0.6 | a=0.8 | a=0.9 |"
        + " GLM-4.7 est. step | a=0.6 | a=0.8 | a=0.9 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k in 1...3 {
        let verify = median("all \(k + 1)")
        let draft = draftFirst + Double(k - 1) * draftNext
        let step = (verify + draft) / decode
        let fullStep = (fullModel(k + 1) + draft) / fullDecode
        func gain(_ a: Double, _ cost: Double) -> String {
            fixed((1 - pow(a, Double(k + 1))) / (1 - a) / cost, 2)
        }
        print("| \(k) | \(fixed(verify / decode, 3)) | \(fixed(draft / decode, 3)) | \(fixed(step, 3)) |"
            + " \(gain(0.6, step)) | \(gain(0.8, step)) | \(gain(0.9, step)) | \(fixed(fullStep, 3)) |"
            + " \(gain(0.6, fullStep)) | \(gain(0.8, fullStep)) | \(gain(0.9, fullStep)) |")
    }
}

/// `glm-bench speculative <model dir> --requests FILE [--k K] [--threads N] [--max-tokens N]`: each chat request
/// of FILE (a JSON list of OpenAI request objects, or one object per line) runs twice on the model, without and
/// with MTP speculative decoding (k drafts per step), through the chat template, tokenizer and sampler (the
/// request's own sampling fields; its constraints are ignored); prints per request and in total the drafts
/// accepted, the decode tokens/s of both (from the first reply token to the last, so prefill is not counted)
/// and their ratio, and whether the replies are identical (they must be at temperature 0).
func speculativeBenchmark(arguments: [String]) throws {
    let usage = "usage: speculative <model dir> --requests FILE [--k 1..3] [--threads N] [--max-tokens N]"
    var positional: [String] = []
    var options: [String: String] = [:]
    var index = 0
    while index < arguments.count {
        if arguments[index].hasPrefix("--") {
            guard index + 1 < arguments.count else { throw GLMError.invalidArgument(usage) }
            options[arguments[index]] = arguments[index + 1]
            index += 2
        } else {
            positional.append(arguments[index])
            index += 1
        }
    }
    guard positional.count == 1, let requestsPath = options["--requests"],
          Set(options.keys).isSubset(of: ["--requests", "--k", "--threads", "--max-tokens"]) else {
        throw GLMError.invalidArgument(usage)
    }
    let k = Int(options["--k"] ?? "1") ?? -1
    let threads = Int(options["--threads"] ?? "0") ?? -1
    let maxTokensCap = options["--max-tokens"].flatMap { Int($0) }
    guard (1...GenerationSession.maxSpeculativeTokens).contains(k), threads >= 0 else {
        throw GLMError.invalidArgument(usage)
    }
    let directory = positional[0]
    let model = try Model.load(directory: directory, threads: threads)
    guard model.hasMTP else { throw GLMError.invalidArgument("\(directory) has no MTP layer") }
    let tokenizer = try Tokenizer.load(path: directory)
    let template = try ChatTemplate.load(modelDirectory: directory) ?? ChatTemplate.glm47()
    let configPath = FileSystem.join(directory, "generation_config.json")
    let generation = FileSystem.exists(configPath) ? try GenerationConfig(contentsOf: configPath) : nil
    let chat = try ChatSession(model: model, tokenizer: tokenizer, template: template, generationConfig: generation,
                               contextLength: min(4096, model.config.maxPositionEmbeddings), threads: threads,
                               speculativeTokens: k)

    let text = try FileSystem.readText(requestsPath)
    var requests: [JSONValue] = []
    if case .array(let items) = try? JSONValue.parse(text) {
        requests = items
    } else {
        for line in text.split(separator: "\n") where !line.allSatisfy({ $0 == " " }) {
            requests.append(try JSONValue.parse(String(line)))
        }
    }
    print("model: \(directory)  threads \(model.threads)  k \(k)  requests \(requests.count)")
    print("")
    print("| request | reply tokens | drafts accepted | plain tok/s | MTP tok/s | MTP / plain | identical |")
    print("|---|---|---|---|---|---|---|")
    var totals = (tokens: 0, fastTokens: 0, drafted: 0, accepted: 0, plainSeconds: 0.0, fastSeconds: 0.0, identical: 0)
    for (i, json) in requests.enumerated() {
        var request = try ChatRequest(json: json, defaults: chat.defaults)
        if let cap = maxTokensCap { request.maxTokens = min(request.maxTokens ?? cap, cap) }
        let promptText = try template.render(messages: .array(request.messages), tools: request.tools.map { .array($0) },
                                             addGenerationPrompt: true, variables: request.templateVariables,
                                             now: request.now)
        let prompt = try tokenizer.encode(promptText, addSpecialTokens: false)
        var runs: [(GenerationResult, Double)] = []
        for speculative in [0, k] {
            try chat.engine.reset()
            var sampler = Sampler(parameters: request.sampling, seed: request.seed ?? 0)
            var firstTokenAt = 0.0
            let result = try chat.engine.generate(prompt: prompt, sampler: &sampler,
                                                  maxTokens: request.maxTokens ?? chat.defaultMaxTokens ?? 512,
                                                  speculativeTokens: speculative) { _ in
                if firstTokenAt == 0 { firstTokenAt = monotonicSeconds() }
                return .proceed
            }
            runs.append((result, monotonicSeconds() - firstTokenAt))
        }
        let (plain, plainSeconds) = runs[0], (fast, fastSeconds) = runs[1]
        let decoded = Double(max(plain.tokens.count - 1, 0))
        let same = plain.tokens == fast.tokens
        totals.tokens += max(plain.tokens.count - 1, 0)
        totals.fastTokens += max(fast.tokens.count - 1, 0)
        totals.drafted += fast.draftedTokens
        totals.accepted += fast.acceptedTokens
        totals.plainSeconds += plainSeconds
        totals.fastSeconds += fastSeconds
        totals.identical += same ? 1 : 0
        let fastDecoded = Double(max(fast.tokens.count - 1, 0))
        print("| \(i + 1) | \(plain.tokens.count) | \(fast.acceptedTokens)/\(fast.draftedTokens)"
            + " (\(fixed(100 * Double(fast.acceptedTokens) / Double(max(fast.draftedTokens, 1)), 1))%) |"
            + " \(fixed(decoded / plainSeconds, 1)) | \(fixed(fastDecoded / fastSeconds, 1)) |"
            + " \(fixed((fastDecoded / fastSeconds) / (decoded / plainSeconds), 2)) | \(same ? "yes" : "no") |")
    }
    let acceptance = Double(totals.accepted) / Double(max(totals.drafted, 1))
    print("")
    print("total: \(totals.tokens) decoded tokens; drafts accepted \(totals.accepted)/\(totals.drafted)"
        + " (\(fixed(100 * acceptance, 1))%); plain \(fixed(Double(totals.tokens) / totals.plainSeconds, 2)) tok/s,"
        + " MTP k=\(k) \(fixed(Double(totals.fastTokens) / totals.fastSeconds, 2)) tok/s,"
        + " ratio \(fixed((Double(totals.fastTokens) / totals.fastSeconds) / (Double(totals.tokens) / totals.plainSeconds), 2));"
        + " identical replies"
        + " \(totals.identical)/\(requests.count)")
}
