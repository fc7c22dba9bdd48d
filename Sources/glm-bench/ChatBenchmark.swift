import GLMFormats
import GLMGeneration
import GLMJSON
import GLMModel
import GLMSupport
import GLMTemplate
import GLMTokenizer
import Glibc

/// `glm-bench chat <model dir> <threads> <prompt tokens> <reply tokens> [tokenizer dir]`: time to first token and
/// decode speed of a conversation's SECOND turn, once on the session that served the first turn (prefix reuse:
/// only the new part of the prompt is evaluated) and once on a fresh session (the whole prompt is evaluated).
///
/// With a tokenizer (tokenizer.json in the model directory, or the directory given last; its ids must fit the
/// model's vocabulary, e.g. glm-tiny on the synthetic GLM-4.7) the full chat stack runs: OpenAI request, chat
/// template, tokenizer, sampler, parser; the first token is the first streamed delta. Without one it runs on
/// token ids: a random prompt, the reply, and a random "next user message", through `GenerationSession`.
/// Decoding is greedy and ends after <reply tokens> tokens (token mode ignores eos ids; chat mode stops at one,
/// which a tokenizer smaller than the model's vocabulary, such as glm-tiny, can never produce).
func chatBenchmark(arguments: [String]) throws {
    guard arguments.count == 4 || arguments.count == 5, let threads = Int(arguments[1]),
          let promptLength = Int(arguments[2]), let replyLength = Int(arguments[3]),
          threads >= 1, promptLength >= 8, replyLength >= 2 else {
        throw GLMError.invalidArgument("usage: chat <model dir> <threads> <prompt tokens >= 8> <reply tokens >= 2>"
            + " [tokenizer dir]")
    }
    let directory = arguments[0]
    let tokenizerPath = arguments.count == 5 ? arguments[4]
        : (FileSystem.exists(FileSystem.join(directory, "tokenizer.json")) ? directory : nil)

    let start = monotonicSeconds()
    let model = try Model.load(directory: directory, threads: threads)
    print("model: \(directory)  \(model.weightType)  threads \(threads)  load \(fixed(monotonicSeconds() - start, 2)) s")
    let contextLength = 2 * (promptLength + replyLength) + 256

    let runner: SecondTurnRunner
    if let tokenizerPath {
        runner = try ChatTurnRunner(model: model, modelDirectory: directory, tokenizerPath: tokenizerPath,
                                    contextLength: contextLength, threads: threads, promptLength: promptLength,
                                    replyLength: replyLength)
        print("mode: chat requests (tokenizer \(tokenizerPath))")
    } else {
        runner = try TokenTurnRunner(model: model, contextLength: contextLength, threads: threads,
                                     promptLength: promptLength, replyLength: replyLength)
        print("mode: token ids (no tokenizer)")
    }

    let first = try runner.firstTurn()
    print("turn 1: \(first.promptTokens) prompt tokens, \(first.replyTokens) reply tokens,"
        + " first token \(fixed(first.timeToFirstToken * 1000, 1)) ms,"
        + " decode \(fixed(first.decodeRate, 2)) tokens/s")
    for reuse in [true, false] {
        let turn = try runner.secondTurn(reusingCache: reuse)
        print("turn 2 \(reuse ? "with prefix reuse   " : "without prefix reuse"):"
            + " \(turn.promptTokens) prompt tokens (\(turn.cachedTokens) cached),"
            + " first token \(fixed(turn.timeToFirstToken * 1000, 1)) ms,"
            + " decode \(fixed(turn.decodeRate, 2)) tokens/s")
    }
    print("sampler (temperature 1, top_p 0.95, \(model.config.vocabSize) logits):"
        + " \(fixed(samplerMilliseconds(vocabularySize: model.config.vocabSize), 3)) ms/token")
}

/// Mean time of one `Sampler.sample` with GLM-4.7's recommended settings over logits spread like a real model's.
private func samplerMilliseconds(vocabularySize: Int) -> Double {
    var random = SeededRandom(seed: 7)
    let logits: [Float] = (0..<vocabularySize).map { _ in
        Float((random.nextUnitInterval() + random.nextUnitInterval() + random.nextUnitInterval()) * 8 - 12)
    }
    var parameters = SamplingParameters()
    parameters.topP = 0.95
    var sampler = Sampler(parameters: parameters, seed: 1)
    sampler.begin(prompt: [])
    let rounds = 20
    let start = monotonicSeconds()
    for _ in 0..<rounds { _ = sampler.sample(logits) }
    return (monotonicSeconds() - start) * 1000 / Double(rounds)
}

/// What one timed turn measured.
private struct TurnTiming {
    var promptTokens: Int
    var cachedTokens: Int
    var replyTokens: Int
    var timeToFirstToken: Double
    /// Reply tokens after the first, per second after the first.
    var decodeRate: Double

    init(promptTokens: Int, cachedTokens: Int, replyTokens: Int, start: Double, firstToken: Double, end: Double) {
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.replyTokens = replyTokens
        timeToFirstToken = firstToken - start
        decodeRate = end > firstToken ? Double(max(0, replyTokens - 1)) / (end - firstToken) : 0
    }
}

private protocol SecondTurnRunner {
    func firstTurn() throws -> TurnTiming
    /// The second turn on the session that ran the first (`reusingCache`) or on a fresh one.
    func secondTurn(reusingCache: Bool) throws -> TurnTiming
}

/// Token ids through `GenerationSession`.
private final class TokenTurnRunner: SecondTurnRunner {
    let model: Model
    let contextLength: Int
    let threads: Int
    let replyLength: Int
    let session: GenerationSession
    let firstPrompt: [Int32]
    let nextUserMessage: [Int32]
    var secondPrompt: [Int32] = []

    init(model: Model, contextLength: Int, threads: Int, promptLength: Int, replyLength: Int) throws {
        self.model = model
        self.contextLength = contextLength
        self.threads = threads
        self.replyLength = replyLength
        session = try GenerationSession(model: model, contextLength: contextLength, threads: threads, eosTokenIDs: [])
        var random = SeededRandom(seed: 2026)
        let vocab = UInt64(model.config.vocabSize)
        firstPrompt = (0..<promptLength).map { _ in Int32(truncatingIfNeeded: random.next() % vocab) }
        nextUserMessage = (0..<max(8, promptLength / 8)).map { _ in Int32(truncatingIfNeeded: random.next() % vocab) }
    }

    func run(_ session: GenerationSession, prompt: [Int32]) throws -> (TurnTiming, [Int32]) {
        var parameters = SamplingParameters()
        parameters.temperature = 0
        var sampler = Sampler(parameters: parameters, seed: 0)
        let start = monotonicSeconds()
        var firstToken = 0.0
        let result = try session.generate(prompt: prompt, sampler: &sampler, maxTokens: replyLength) { _ in
            if firstToken == 0 { firstToken = monotonicSeconds() }
            return .proceed
        }
        let timing = TurnTiming(promptTokens: prompt.count, cachedTokens: result.reusedPromptTokens,
                                replyTokens: result.tokens.count, start: start, firstToken: firstToken,
                                end: monotonicSeconds())
        return (timing, result.tokens)
    }

    func firstTurn() throws -> TurnTiming {
        let (timing, reply) = try run(session, prompt: firstPrompt)
        secondPrompt = firstPrompt + reply + nextUserMessage
        return timing
    }

    func secondTurn(reusingCache: Bool) throws -> TurnTiming {
        let target = reusingCache ? session
            : try GenerationSession(model: model, contextLength: contextLength, threads: threads, eosTokenIDs: [])
        return try run(target, prompt: secondPrompt).0
    }
}

/// OpenAI requests through `ChatSession`.
private final class ChatTurnRunner: SecondTurnRunner {
    let makeSession: () throws -> ChatSession
    let session: ChatSession
    let replyLength: Int
    let firstMessages: [JSONValue]
    var secondMessages: [JSONValue] = []

    init(model: Model, modelDirectory: String, tokenizerPath: String, contextLength: Int, threads: Int,
         promptLength: Int, replyLength: Int) throws {
        let tokenizer = try Tokenizer.load(path: tokenizerPath)
        let template = try ChatTemplate.load(modelDirectory: modelDirectory)
            ?? ChatTemplate.load(modelDirectory: tokenizerPath) ?? ChatTemplate.glm47()
        let configPath = FileSystem.join(modelDirectory, "generation_config.json")
        let config = FileSystem.exists(configPath) ? try GenerationConfig(contentsOf: configPath) : nil
        makeSession = {
            try ChatSession(model: model, tokenizer: tokenizer, template: template, generationConfig: config,
                            contextLength: contextLength, threads: threads)
        }
        session = try makeSession()
        self.replyLength = replyLength
        // A system prompt of about `promptLength` tokens of ordinary prose, then a question.
        let sentence = "The quick brown fox jumps over the lazy dog while the weather stays calm. "
        let perSentence = try max(1, tokenizer.encode(sentence, addSpecialTokens: false).count)
        let system = String(repeating: sentence, count: max(1, promptLength / perSentence))
        firstMessages = [
            .object(JSONObject([("role", .string("system")), ("content", .string(system))])),
            .object(JSONObject([("role", .string("user")), ("content", .string("Tell me a story about the fox."))])),
        ]
    }

    func request(_ messages: [JSONValue]) -> JSONValue {
        .object(JSONObject([
            ("messages", .array(messages)), ("temperature", JSONValue(0)), ("max_tokens", JSONValue(replyLength)),
            ("stream", .bool(true)),
        ]))
    }

    func run(_ session: ChatSession, _ messages: [JSONValue]) throws -> (TurnTiming, JSONValue) {
        let start = monotonicSeconds()
        var firstToken = 0.0
        let response = try session.complete(request: request(messages)) { event in
            if case .delta = event.kind, firstToken == 0 { firstToken = monotonicSeconds() }
            return true
        }
        let end = monotonicSeconds()
        let usage = response["usage"]
        let timing = TurnTiming(promptTokens: usage?["prompt_tokens"]?.intValue ?? 0,
                                cachedTokens: usage?["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0,
                                replyTokens: usage?["completion_tokens"]?.intValue ?? 0,
                                start: start, firstToken: firstToken == 0 ? end : firstToken, end: end)
        return (timing, response)
    }

    func firstTurn() throws -> TurnTiming {
        let (timing, response) = try run(session, firstMessages)
        let reply = response["choices"]?.arrayValue?.first?["message"] ?? .null
        secondMessages = firstMessages + [reply,
            .object(JSONObject([("role", .string("user")), ("content", .string("And what did the dog do?"))]))]
        return timing
    }

    func secondTurn(reusingCache: Bool) throws -> TurnTiming {
        try run(reusingCache ? session : makeSession(), secondMessages).0
    }
}
