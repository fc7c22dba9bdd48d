import GLMFormats
import GLMSupport

/// GGUF stores the vocabulary but not the pre-tokenizer: `tokenizer.ggml.pre` names it. These are the split
/// patterns and merge rule of the HF tokenizer.json each name was converted from (llama.cpp's registry,
/// `convert_hf_to_gguf_update.py`, and `llama-vocab.cpp`, which keeps each original regex beside its adapted
/// form), written in HF's own form so results match HF `tokenizers`.
///
/// Every character outside ASCII in these patterns is written as a `\u{...}` escape: a Unicode-normalizing step
/// anywhere between llama.cpp's source and this file would otherwise rewrite characters with singleton canonical
/// decompositions (U+1FD3 becomes U+0390, U+212A KELVIN SIGN becomes `K`...) and silently change the classes.
/// GGUFPreTokenizerTests checks the code points and that this file stays ASCII.
enum GGUFPreTokenizer {
    static let cl100k = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen35 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let o200k = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let tekken = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// GPT-2's pattern without its final `\s+`: what is left unmatched becomes a piece of its own all the same.
    static let gpt2NoTrailingSpace = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    /// Falcon, as llama.cpp splits it: runs of punctuation (`\p{P}` plus the ASCII punctuation Unicode counts as
    /// symbols), GPT-2's pattern, then runs of three ASCII digits.
    static let falcon = [#"[\p{P}\$\+<=>\^~\|`]+"#, gpt2NoTrailingSpace, "[0-9][0-9][0-9]"]
    /// CJK Unified Ideographs U+4E00-U+9FA5, U+0800-U+4E00 (sic, as llama.cpp has it) and Hangul U+AC00-U+D7FF.
    static let deepseekCJK = "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+"
    static let deepseekLLM = [
        "[\r\n]",
        """
        \\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\
        \u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\
        \u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\
        \u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\
        \u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\
        \u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\
        \u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\
        \u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\
        \u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\
        \u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\
        \u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\
        \u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\
        \u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+
        """,
        "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
        #"\s+$"#,
        deepseekCJK,
        #"\p{N}+"#,
    ]
    static let deepseekCoder = ["[\r\n]", #"\s?\p{L}+"#, #"\s?\p{P}+"#, deepseekCJK, #"\p{N}"#]
    static let deepseekV3 = [
        #"\p{N}{1,3}"#,
        // CJK Unified Ideographs U+4E00-U+9FA5, Hiragana, Katakana.
        "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
        // CR and LF as characters, not `\r` `\n` escapes, as in the tokenizer.json (the same to the regex engine).
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*"
            + "|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ]

    struct Family {
        /// `tokenizer.ggml.pre` values.
        let names: [String]
        /// Applied in sequence, each as a Split with Isolated behavior.
        let patterns: [String]
        let ignoreMerges: Bool
    }

    /// Grouped as llama.cpp groups them (`llama_vocab::impl::load`), with its `ignore_merges` flags.
    static let families: [Family] = [
        Family(names: ["glm4", "glm5"], patterns: [cl100k], ignoreMerges: true),
        Family(names: ["chatglm-bpe"], patterns: [cl100k], ignoreMerges: false),
        Family(names: ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                       "jina-v5-nano"],
               patterns: [cl100k], ignoreMerges: true),
        Family(names: ["dbrx", "smaug-bpe"], patterns: [cl100k], ignoreMerges: false),
        Family(names: ["qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2",
                       "f2llmv2", "solar-open"],
               patterns: [qwen2], ignoreMerges: false),
        Family(names: ["qwen35"], patterns: [qwen35], ignoreMerges: false),
        Family(names: ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                       "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "exaone4",
                       "trillion", "granite-docling", "modern-bert"],
               patterns: [gpt2Pattern], ignoreMerges: false),
        Family(names: ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b",
                       "mellum2"],
               patterns: [#"\p{N}"#, gpt2Pattern], ignoreMerges: false),
        Family(names: ["falcon"], patterns: falcon, ignoreMerges: false),
        Family(names: ["deepseek-llm"], patterns: deepseekLLM, ignoreMerges: false),
        Family(names: ["deepseek-coder"], patterns: deepseekCoder, ignoreMerges: false),
        Family(names: ["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"], patterns: deepseekV3, ignoreMerges: false),
        Family(names: ["gpt-4o", "llama4", "minimax-m2", "kanana2", "talkie"], patterns: [o200k], ignoreMerges: false),
        Family(names: ["tekken"], patterns: [tekken], ignoreMerges: true),
    ]

    static var supportedNames: [String] { families.flatMap(\.names) }

    /// (patterns applied in sequence with Isolated behavior, ignore_merges) for a `tokenizer.ggml.pre` name.
    static func configuration(for name: String) -> ([String], Bool)? {
        guard let family = families.first(where: { $0.names.contains(name) }) else { return nil }
        return (family.patterns, family.ignoreMerges)
    }

    /// What a `tokenizer.ggml.model` other than `gpt2` is, for the error that refuses it.
    static func describeModel(_ kind: String) -> String {
        switch kind {
        case "llama": return "'llama' (SentencePiece)"
        case "bert": return "'bert' (WordPiece)"
        case "t5": return "'t5' (Unigram)"
        case "rwkv": return "'rwkv' (RWKV)"
        case "gemma4": return "'gemma4' (BPE on raw UTF-8, not byte-level)"
        default: return "'\(kind)'"
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
            throw .unsupported("'\(path)': GGUF tokenizer model \(GGUFPreTokenizer.describeModel(kind)) is not supported; "
                + "only byte-level BPE ('gpt2') is")
        }
        guard let preName = try gguf.string(for: "tokenizer.ggml.pre") else {
            throw .unsupported("'\(path)': no tokenizer.ggml.pre in the GGUF metadata; llama.cpp's fallback "
                + "pre-tokenizer ('default') is not supported")
        }
        guard let (patterns, ignoreMerges) = GGUFPreTokenizer.configuration(for: preName) else {
            throw .unsupported("'\(path)': GGUF pre-tokenizer '\(preName)' is not supported")
        }
        // Compiled first: a bad pattern fails before the vocabulary is read.
        var steps: [PreTokenizerStep] = []
        for p in patterns {
            do {
                steps.append(.split(try PatternRegex(p), behavior: .isolated, invert: false))
            } catch {
                throw GLMError(error.code, "'\(path)': pre-tokenizer '\(preName)': \(error.message)")
            }
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
