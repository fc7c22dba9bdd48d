import GLMJSON
import GLMSupport

/// A checkpoint's `generation_config.json`: the stop tokens and the sampling defaults its authors chose.
/// Absent fields are nil (the sampler then uses its own defaults); present fields are type- and range-checked.
public struct GenerationConfig: Sendable {
    /// `eos_token_id`: one id or a list (GLM-4.x lists several: `<|endoftext|>`, `<|user|>`, `<|observation|>`).
    public var eosTokenIDs: [Int]
    public var padTokenID: Int?
    public var bosTokenID: Int?
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var doSample: Bool?
    public var maxNewTokens: Int?
    public var maxLength: Int?
    public var repetitionPenalty: Double?

    /// Reads and checks `path` (a `generation_config.json`).
    public init(contentsOf path: String) throws(GLMError) {
        try self.init(json: ConfigFields.load(path), source: path)
    }

    /// Parses a `generation_config.json` object; `source` names it in error messages.
    public init(json: JSONValue, source: String) throws(GLMError) {
        let f = try ConfigFields(json, source: source)
        eosTokenIDs = try f.tokenIDs("eos_token_id")
        padTokenID = try f.tokenID("pad_token_id")
        bosTokenID = try f.tokenID("bos_token_id")
        temperature = try f.optionalDouble("temperature")
        topP = try f.optionalDouble("top_p")
        topK = try f.optionalInt("top_k")
        minP = try f.optionalDouble("min_p")
        doSample = try f.optionalBool("do_sample")
        maxNewTokens = try f.optionalInt("max_new_tokens")
        maxLength = try f.optionalInt("max_length")
        repetitionPenalty = try f.optionalDouble("repetition_penalty")

        if let t = temperature, !(t.isFinite && t >= 0) {
            throw f.error("temperature", "is \(t), expected a finite number >= 0")
        }
        if let p = topP, !(p >= 0 && p <= 1) { throw f.error("top_p", "is \(p), expected a number in [0, 1]") }
        if let p = minP, !(p >= 0 && p <= 1) { throw f.error("min_p", "is \(p), expected a number in [0, 1]") }
        if let k = topK, k < 0 { throw f.error("top_k", "is \(k), expected an integer >= 0") }
        if let n = maxNewTokens, n < 0 { throw f.error("max_new_tokens", "is \(n), expected an integer >= 0") }
        if let n = maxLength, n < 0 { throw f.error("max_length", "is \(n), expected an integer >= 0") }
        if let r = repetitionPenalty, !(r.isFinite && r > 0) {
            throw f.error("repetition_penalty", "is \(r), expected a finite number > 0")
        }
    }
}
