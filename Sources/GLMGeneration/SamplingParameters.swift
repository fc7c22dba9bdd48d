import GLMFormats
import GLMSupport

/// What the sampler does to one step's logits, with vLLM's meanings and neutral values:
/// `temperature` 0 = greedy; `topK` 0 = off; `topP` 1 = off; `minP` 0 = off; `repetitionPenalty` 1 = off;
/// `presencePenalty`/`frequencyPenalty` 0 = off; `logitBias` empty = off.
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Double = 1.0
    public var topK: Int = 0
    public var topP: Double = 1.0
    public var minP: Double = 0.0
    /// Divides positive logits and multiplies negative ones of every token seen in the prompt or the output.
    public var repetitionPenalty: Double = 1.0
    /// Subtracted once from the logit of every token already generated (not prompt tokens).
    public var presencePenalty: Double = 0.0
    /// Subtracted from a generated token's logit once per time it was generated.
    public var frequencyPenalty: Double = 0.0
    /// Added to the raw logit of a token id (OpenAI `logit_bias`, clamped to [-100, 100]).
    public var logitBias: [Int: Double] = [:]

    /// Below this temperature sampling is greedy (vLLM's `_SAMPLING_EPS`).
    public static let greedyTemperature = 1e-5

    public init() {}

    /// The checkpoint's recommended defaults (`temperature`, `top_p`, `top_k`, `min_p`, `repetition_penalty`
    /// of generation_config.json, the fields vLLM takes from it); missing fields keep the neutral values.
    public init(defaults config: GenerationConfig?) {
        guard let config else { return }
        if let t = config.temperature { temperature = t }
        if let p = config.topP { topP = p }
        if let k = config.topK { topK = k }
        if let p = config.minP { minP = p }
        if let r = config.repetitionPenalty { repetitionPenalty = r }
    }

    public var isGreedy: Bool { temperature < SamplingParameters.greedyTemperature }

    /// Checks the ranges vLLM's `SamplingParams` enforces; `vocabularySize` bounds the logit-bias ids.
    public func validate(vocabularySize: Int) throws(GLMError) {
        guard temperature.isFinite && temperature >= 0 else {
            throw .invalidArgument("temperature must be a finite number >= 0, got \(temperature)")
        }
        guard topP > 0 && topP <= 1 else { throw .invalidArgument("top_p must be in (0, 1], got \(topP)") }
        guard topK >= -1 else { throw .invalidArgument("top_k must be -1 (off), 0 (off) or positive, got \(topK)") }
        guard minP >= 0 && minP <= 1 else { throw .invalidArgument("min_p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite && repetitionPenalty > 0 else {
            throw .invalidArgument("repetition_penalty must be a finite number > 0, got \(repetitionPenalty)")
        }
        guard presencePenalty >= -2 && presencePenalty <= 2 else {
            throw .invalidArgument("presence_penalty must be in [-2, 2], got \(presencePenalty)")
        }
        guard frequencyPenalty >= -2 && frequencyPenalty <= 2 else {
            throw .invalidArgument("frequency_penalty must be in [-2, 2], got \(frequencyPenalty)")
        }
        for (id, bias) in logitBias {
            guard id >= 0 && id < vocabularySize else {
                throw .invalidArgument("logit_bias has token id \(id), outside the vocabulary (0..<\(vocabularySize))")
            }
            guard bias.isFinite else { throw .invalidArgument("logit_bias for token \(id) is not a finite number") }
        }
    }
}
