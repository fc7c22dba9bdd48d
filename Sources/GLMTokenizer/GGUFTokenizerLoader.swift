import GLMFormats
import GLMSupport

/// GGUF stores the vocabulary but not the pre-tokenizer: `tokenizer.ggml.pre` names it. These are the split
/// patterns and merge rule of the HF tokenizer.json each name was converted from (llama.cpp's registry,
/// `convert_hf_to_gguf_update.py`), written in HF's own form so results match HF `tokenizers`.
enum GGUFPreTokenizer {
    static let cl100k = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let o200k = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let tekken = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let deepseekLLM = [
        "[\r\n]",
        #"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"#,
        #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#,
        #"\s+$"#,
        "[一-龥ࠀ-一가-퟿]+",
        #"\p{N}+"#,
    ]
    static let deepseekCoder = ["[\r\n]", #"\s?\p{L}+"#, #"\s?\p{P}+"#, "[一-龥ࠀ-一가-퟿]+", #"\p{N}"#]
    static let deepseekV3 = [
        #"\p{N}{1,3}"#,
        "[一-龥぀-ゟ゠-ヿ]+",
        ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
    ]

    /// (patterns applied in sequence with Isolated behavior, ignore_merges) for a `tokenizer.ggml.pre` name.
    static func configuration(for name: String) -> ([String], Bool)? {
        switch name {
        case "glm4", "glm5", "chatglm-bpe": return ([cl100k], true)
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return ([cl100k], true)
        case "dbrx", "smaug-bpe": return ([cl100k], false)
        case "qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2": return ([qwen2], false)
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling":
            return ([gpt2Pattern], false)
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b":
            return ([#"\p{N}"#, gpt2Pattern], false)
        case "deepseek-llm": return (deepseekLLM, false)
        case "deepseek-coder": return (deepseekCoder, false)
        case "deepseek-v3", "hunyuan-dense": return (deepseekV3, false)
        case "gpt-4o", "llama4", "minimax-m2": return ([o200k], false)
        case "tekken": return ([tekken], true)
        default: return nil
        }
    }
}

extension Tokenizer {
    /// GGUF token types (`tokenizer.ggml.token_type`).
    enum GGUFTokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Loads the tokenizer from GGUF metadata (`tokenizer.ggml.model` = `gpt2`, i.e. byte-level BPE).
    public static func load(gguf: GGUFFile) throws(GLMError) -> Tokenizer {
        let path = gguf.path
        guard let kind = try gguf.string(for: "tokenizer.ggml.model") else {
            throw .format("'\(path)': no tokenizer.ggml.model in the GGUF metadata")
        }
        guard kind == "gpt2" else {
            throw .unsupported("'\(path)': GGUF tokenizer model '\(kind)' is not supported (only byte-level BPE, 'gpt2')")
        }
        let preName = try gguf.string(for: "tokenizer.ggml.pre") ?? "default"
        guard let (patterns, ignoreMerges) = GGUFPreTokenizer.configuration(for: preName) else {
            throw .unsupported("'\(path)': GGUF pre-tokenizer '\(preName)' is not known")
        }
        guard let tokenArray = try gguf.array(for: "tokenizer.ggml.tokens") else {
            throw .format("'\(path)': no tokenizer.ggml.tokens in the GGUF metadata")
        }
        let types = try gguf.integerArray(for: "tokenizer.ggml.token_type")
        if let types, types.count != tokenArray.count {
            throw .format("'\(path)': tokenizer.ggml.token_type has \(types.count) entries for \(tokenArray.count) tokens")
        }
        guard tokenArray.count <= VocabularyBuilder.maxID else { throw .format("'\(path)': too many tokens (\(tokenArray.count))") }

        var builder = VocabularyBuilder(source: path)
        var added: [AddedToken] = []
        try tokenArray.forEachStringBytes { (id, bytes) throws(GLMError) in
            let type = types.flatMap { GGUFTokenType(rawValue: $0[id]) } ?? .normal
            switch type {
            case .control, .userDefined:
                guard let content = String(validating: bytes, as: UTF8.self) else {
                    throw .format("'\(path)': token \(id) is not valid UTF-8")
                }
                added.append(AddedToken(id: Int32(id), content: content, special: type == .control))
                try builder.add(id: id, string: bytes, inModel: false)
            case .unused:
                try builder.add(id: id, string: bytes, inModel: false)
            default:
                try builder.add(id: id, string: bytes, inModel: true)
            }
        }
        if let merges = try gguf.array(for: "tokenizer.ggml.merges") {
            try merges.forEachStringBytes { (i, line) throws(GLMError) in
                guard let space = line.firstIndex(of: 0x20), space > 0,
                      !line[(space + 1)...].contains(0x20) else {
                    throw .format("'\(path)': tokenizer.ggml.merges[\(i)] is not two tokens separated by one space")
                }
                try builder.addMerge(left: UnsafeRawBufferPointer(rebasing: line[..<space]),
                                     right: UnsafeRawBufferPointer(rebasing: line[(space + 1)...]))
            }
        }
        let (tokens, merges) = try builder.build()

        func specialID(_ key: String) throws(GLMError) -> Int32? {
            guard let v = try gguf.integer(for: key) else { return nil }
            guard v >= 0 && v < tokens.count else {
                throw .format("'\(path)': \(key) = \(v) is outside the vocabulary (\(tokens.count) tokens)")
            }
            return Int32(v)
        }
        let unknown = try specialID("tokenizer.ggml.unknown_token_id")
        let initial = BPEModel.initialSymbols(tokens: tokens, byteFallback: false, unknown: nil) { _ in nil }
        let model = BPEModel(tokens: tokens, merges: merges, initialSymbols: initial, ignoreMerges: ignoreMerges)
        var steps: [PreTokenizerStep] = []
        for p in patterns { steps.append(.split(try PatternRegex(p), behavior: .isolated, invert: false)) }
        var parts = Tokenizer.Parts(model: model, preTokenizer: PreTokenizer(steps: steps), source: path)
        parts.addedTokens = added
        parts.bos = try specialID("tokenizer.ggml.bos_token_id")
        parts.eos = try specialID("tokenizer.ggml.eos_token_id")
        parts.pad = try specialID("tokenizer.ggml.padding_token_id")
        parts.unknown = unknown
        if try gguf.bool(for: "tokenizer.ggml.add_bos_token") == true, let bos = parts.bos { parts.prefixIDs = [bos] }
        if try gguf.bool(for: "tokenizer.ggml.add_eos_token") == true, let eos = parts.eos { parts.suffixIDs = [eos] }
        return Tokenizer(parts)
    }
}
