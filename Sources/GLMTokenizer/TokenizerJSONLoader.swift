import GLMJSON
import GLMSupport

extension Tokenizer {
    /// Loads an HF `tokenizer.json` (BPE model). `tokenizer_config.json` next to it, if present, supplies the
    /// names of the BOS/EOS/PAD/UNK tokens. Unsupported components are `.unsupported` errors naming them.
    public static func load(tokenizerJSON path: String) throws(GLMError) -> Tokenizer {
        let file = try MappedFile(path: path)
        var builder = VocabularyBuilder(source: path)
        var modelType: String? = nil
        var ignoreMerges = false
        var byteFallback = false
        var unknownToken: String? = nil
        var addedTokensJSON: JSONValue = .array([])
        var normalizerJSON: JSONValue = .null
        var preTokenizerJSON: JSONValue = .null
        var postProcessorJSON: JSONValue = .null
        var decoderJSON: JSONValue = .null
        var sawVocab = false
        var vocabIsList = false
        func unsupportedModel(_ type: String) -> GLMError {
            .unsupported("'\(path)': tokenizer model '\(type)' is not supported (only BPE)")
        }
        var vocabIDs = Set<Int32>()

        do {
            let bytes = file.bytes.assumingMemoryBound(to: UInt8.self)
            var scanner = JSONScanner(bytes: bytes, path: path)
            try scanner.forEachMember { (s: inout JSONScanner, key: String) throws(GLMError) in
                switch key {
                case "model":
                    try s.forEachMember { (s: inout JSONScanner, key: String) throws(GLMError) in
                        switch key {
                        case "vocab":
                            sawVocab = true
                            // Unigram's vocab is a list of [piece, score]: report the model type, not bad JSON.
                            if s.peek() == 0x5B {
                                _ = try s.skipValue()
                                vocabIsList = true
                                return
                            }
                            try s.forEachMemberBytes { (s: inout JSONScanner, token: [UInt8]) throws(GLMError) in
                                let id = try s.readInt()
                                if id < VocabularyBuilder.maxID { vocabIDs.insert(Int32(id)) }
                                try builder.add(id: id, string: token, inModel: true)
                            }
                        case "merges":
                            try readMerges(&s, into: &builder, path: path)
                        default:
                            let value = try s.readValue()
                            switch key {
                            case "type":
                                modelType = value.stringValue
                                // Before the vocabulary is read (HF writes "type" first): another model's
                                // vocabulary or merges would fail with a misleading message.
                                if let type = modelType, type != "BPE" { throw unsupportedModel(type) }
                            case "ignore_merges": ignoreMerges = value.boolValue ?? false
                            case "byte_fallback": byteFallback = value.boolValue ?? false
                            case "unk_token": unknownToken = value.stringValue
                            case "continuing_subword_prefix", "end_of_word_suffix":
                                if let v = value.stringValue, !v.isEmpty {
                                    throw .unsupported("'\(path)': BPE \(key) '\(v)' is not supported (byte-level BPE only)")
                                }
                            default: break
                            }
                        }
                    }
                case "added_tokens": addedTokensJSON = try s.readValue()
                case "normalizer": normalizerJSON = try s.readValue()
                case "pre_tokenizer": preTokenizerJSON = try s.readValue()
                case "post_processor": postProcessorJSON = try s.readValue()
                case "decoder": decoderJSON = try s.readValue()
                default: _ = try s.skipValue()
                }
            }
            if scanner.peek() != nil { throw scanner.error("extra data after the JSON value") }
        }
        if let type = modelType, type != "BPE" { throw unsupportedModel(type) }
        guard sawVocab else { throw .format("'\(path)': model.vocab is missing") }
        guard !vocabIsList else { throw .format("'\(path)': model.vocab is a list; a BPE vocabulary is an object") }

        // Added tokens.
        guard let addedArray = addedTokensJSON.arrayValue else { throw .format("'\(path)': added_tokens is not an array") }
        var added: [AddedToken] = []
        for (i, item) in addedArray.enumerated() {
            guard let id = item["id"]?.intValue, let content = item["content"]?.stringValue else {
                throw .format("'\(path)': added_tokens[\(i)] needs an integer 'id' and a string 'content'")
            }
            guard id >= 0 && id < VocabularyBuilder.maxID else { throw .format("'\(path)': added_tokens[\(i)] id \(id) is out of range") }
            let special = item["special"]?.boolValue ?? false
            added.append(AddedToken(id: Int32(id), content: content, special: special,
                                    singleWord: item["single_word"]?.boolValue ?? false,
                                    leftStrip: item["lstrip"]?.boolValue ?? false,
                                    rightStrip: item["rstrip"]?.boolValue ?? false,
                                    normalized: item["normalized"]?.boolValue ?? !special))
        }
        // An added token absent from model.vocab gets its id here (decodable, not a BPE vocabulary entry).
        for t in added where !vocabIDs.contains(t.id) {
            try builder.add(id: Int(t.id), string: t.content.utf8, inModel: false)
        }
        let (tokens, merges) = try builder.build()

        let normalizers = try parseNormalizer(normalizerJSON, path: path)
        let steps = try parsePreTokenizer(preTokenizerJSON, path: path)
        try checkDecoder(decoderJSON, preTokenizer: preTokenizerJSON, path: path)

        func id(of token: String) -> Int32? {
            if let t = added.last(where: { $0.content == token }) { return t.id }
            guard let bytes = token.utf8.withContiguousStorageIfAvailable({ ByteLevel.decode(UnsafeRawBufferPointer($0)) }) ?? nil
            else { return nil }
            return bytes.withUnsafeBytes { tokens.find($0) }
        }
        let unknown = unknownToken.flatMap(id(of:))
        let initial = BPEModel.initialSymbols(tokens: tokens, byteFallback: byteFallback, unknown: unknown) { b in
            let name = "<0x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) + ">"
            return id(of: name)
        }
        let model = BPEModel(tokens: tokens, merges: merges, initialSymbols: initial, ignoreMerges: ignoreMerges)
        var parts = Tokenizer.Parts(model: model, preTokenizer: PreTokenizer(steps: steps), source: path)
        parts.normalizers = normalizers
        parts.addedTokens = added
        parts.unknown = unknown
        (parts.prefixIDs, parts.suffixIDs) = try parsePostProcessor(postProcessorJSON, path: path, id: id(of:))
        // The post-processor lists its ids itself (TemplateProcessing's "ids", Roberta's [token, id]); HF takes them
        // on trust, but an id past the vocabulary would reach the model's embedding lookup from every encode.
        for added in parts.prefixIDs + parts.suffixIDs where Int(added) >= tokens.count {
            throw .format("'\(path)': post_processor adds token id \(added), outside the vocabulary (\(tokens.count) ids)")
        }

        // tokenizer_config.json: names of the special tokens.
        var directory = path
        if let slash = directory.lastIndex(of: "/") { directory = String(directory[..<slash]) } else { directory = "." }
        let configPath = FileSystem.join(directory, "tokenizer_config.json")
        if FileSystem.exists(configPath) {
            let config: JSONValue
            do {
                config = try JSONValue.parse(FileSystem.readText(configPath))
            } catch {
                // The parser's line and column mean nothing without the file they are in.
                if error.message.contains(configPath) { throw error }
                throw GLMError(error.code, "'\(configPath)': \(error.message)")
            }
            func tokenName(_ key: String) -> String? {
                guard let v = config[key] else { return nil }
                return v.stringValue ?? v["content"]?.stringValue
            }
            parts.bos = tokenName("bos_token").flatMap(id(of:))
            parts.eos = tokenName("eos_token").flatMap(id(of:))
            parts.pad = tokenName("pad_token").flatMap(id(of:))
            if let u = tokenName("unk_token").flatMap(id(of:)) { parts.unknown = u }
        }
        return Tokenizer(parts)
    }

    private static func readMerges(_ s: inout JSONScanner, into builder: inout VocabularyBuilder, path: String) throws(GLMError) {
        var left: [UInt8] = [], right: [UInt8] = []
        try s.forEachElement { (s: inout JSONScanner) throws(GLMError) in
            left.removeAll(keepingCapacity: true)
            right.removeAll(keepingCapacity: true)
            if s.peek() == 0x5B {
                var count = 0
                try s.forEachElement { (s: inout JSONScanner) throws(GLMError) in
                    if count == 0 { try s.readString(into: &left) } else { try s.readString(into: &right) }
                    count += 1
                    if count > 2 { throw s.error("a merge must have exactly two parts") }
                }
                if count != 2 { throw s.error("a merge must have exactly two parts") }
            } else {
                var line: [UInt8] = []
                try s.readString(into: &line)
                let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw .format("'\(path)': merge #\(builder.mergeCount) '\(String(decoding: line, as: UTF8.self))' is not two tokens separated by one space")
                }
                left.append(contentsOf: parts[0])
                right.append(contentsOf: parts[1])
            }
            try builder.addMerge(left: left, right: right)
        }
    }

    private static func parseNormalizer(_ json: JSONValue, path: String) throws(GLMError) -> [NormalizerStep] {
        if json.isNull { return [] }
        guard let type = json["type"]?.stringValue else { throw .format("'\(path)': normalizer without a type") }
        switch type {
        case "Sequence":
            guard let items = json["normalizers"]?.arrayValue else { throw .format("'\(path)': Sequence normalizer without 'normalizers'") }
            var steps: [NormalizerStep] = []
            for item in items { steps += try parseNormalizer(item, path: path) }
            return steps
        case "NFC": return [.nfc]
        case "NFD": return [.nfd]
        case "NFKC": return [.nfkc]
        case "NFKD": return [.nfkd]
        case "Lowercase": return [.lowercase]
        case "Prepend":
            guard let p = json["prepend"]?.stringValue else { throw .format("'\(path)': Prepend normalizer without 'prepend'") }
            return [.prepend(p)]
        case "Replace":
            guard let pattern = json["pattern"]?["String"]?.stringValue, let content = json["content"]?.stringValue else {
                throw .unsupported("'\(path)': Replace normalizer with a regex pattern is not supported")
            }
            return [.replace(pattern, content)]
        default:
            throw .unsupported("'\(path)': normalizer '\(type)' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Sequence are)")
        }
    }

    private static func parsePreTokenizer(_ json: JSONValue, path: String) throws(GLMError) -> [PreTokenizerStep] {
        if json.isNull { return [] }
        guard let type = json["type"]?.stringValue else { throw .format("'\(path)': pre_tokenizer without a type") }
        switch type {
        case "Sequence":
            guard let items = json["pretokenizers"]?.arrayValue else { throw .format("'\(path)': Sequence pre_tokenizer without 'pretokenizers'") }
            var steps: [PreTokenizerStep] = []
            for item in items { steps += try parsePreTokenizer(item, path: path) }
            return steps
        case "Split":
            let pattern: String
            if let regex = json["pattern"]?["Regex"]?.stringValue {
                pattern = regex
            } else if let literal = json["pattern"]?["String"]?.stringValue {
                pattern = literal.unicodeScalars.map { s -> String in
                    let c = Character(s)
                    return "\\^$.|?*+()[]{}".contains(c) ? "\\" + String(c) : String(c)
                }.joined()
            } else {
                throw .format("'\(path)': Split pre_tokenizer without a Regex or String pattern")
            }
            guard let behaviorName = json["behavior"]?.stringValue, let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .format("'\(path)': Split pre_tokenizer has an unknown behavior '\(json["behavior"]?.stringValue ?? "")'")
            }
            return [.split(try PatternRegex(pattern), behavior: behavior, invert: json["invert"]?.boolValue ?? false)]
        case "ByteLevel":
            var steps: [PreTokenizerStep] = []
            if json["add_prefix_space"]?.boolValue ?? true { steps.append(.prefixSpace) }
            if json["use_regex"]?.boolValue ?? true {
                steps.append(.split(try PatternRegex(gpt2Pattern), behavior: .isolated, invert: false))
            }
            return steps
        case "Digits":
            let individual = json["individual_digits"]?.boolValue ?? false
            return [.split(try PatternRegex(#"\p{N}"#), behavior: individual ? .isolated : .contiguous, invert: false)]
        default:
            throw .unsupported("'\(path)': pre_tokenizer '\(type)' is not supported (Split, ByteLevel, Digits, Sequence are)")
        }
    }

    /// Decoding assumes ByteLevel: require it in the decoder (or, with no decoder, in the pre-tokenizer).
    private static func checkDecoder(_ decoder: JSONValue, preTokenizer: JSONValue, path: String) throws(GLMError) {
        func mentionsByteLevel(_ v: JSONValue) -> Bool {
            if v["type"]?.stringValue == "ByteLevel" { return true }
            for key in ["decoders", "pretokenizers"] {
                if let items = v[key]?.arrayValue, items.contains(where: mentionsByteLevel) { return true }
            }
            return false
        }
        if !decoder.isNull {
            guard mentionsByteLevel(decoder) else {
                throw .unsupported("'\(path)': decoder '\(decoder["type"]?.stringValue ?? "?")' is not supported (byte-level BPE needs ByteLevel)")
            }
        } else if !mentionsByteLevel(preTokenizer) {
            throw .unsupported("'\(path)': not a byte-level BPE tokenizer (no ByteLevel decoder or pre-tokenizer)")
        }
    }

    /// The ids a post-processor adds around a single sequence (TemplateProcessing, Roberta/Bert, ByteLevel, Sequence).
    private static func parsePostProcessor(_ json: JSONValue, path: String, id: (String) -> Int32?) throws(GLMError) -> ([Int32], [Int32]) {
        if json.isNull { return ([], []) }
        guard let type = json["type"]?.stringValue else { throw .format("'\(path)': post_processor without a type") }
        switch type {
        case "ByteLevel": return ([], [])
        case "Sequence":
            var prefix: [Int32] = [], suffix: [Int32] = []
            for item in json["processors"]?.arrayValue ?? [] {
                let (p, s) = try parsePostProcessor(item, path: path, id: id)
                prefix += p
                suffix = s + suffix
            }
            return (prefix, suffix)
        case "TemplateProcessing":
            guard let single = json["single"]?.arrayValue else { throw .format("'\(path)': TemplateProcessing without 'single'") }
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for piece in single {
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let name = piece["SpecialToken"]?["id"]?.stringValue else {
                    throw .format("'\(path)': TemplateProcessing item is neither Sequence nor SpecialToken")
                }
                var ids: [Int32] = []
                if let listed = json["special_tokens"]?[name]?["ids"]?.arrayValue {
                    for v in listed {
                        guard let i = v.intValue, i >= 0, i < VocabularyBuilder.maxID else {
                            throw .format("'\(path)': TemplateProcessing special token '\(name)' has a bad id")
                        }
                        ids.append(Int32(i))
                    }
                } else if let i = id(name) {
                    ids = [i]
                } else {
                    throw .format("'\(path)': TemplateProcessing special token '\(name)' is not in the vocabulary")
                }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            guard let cls = json["cls"]?.arrayValue, cls.count == 2, let clsID = cls[1].intValue,
                  let sep = json["sep"]?.arrayValue, sep.count == 2, let sepID = sep[1].intValue,
                  clsID >= 0, clsID < VocabularyBuilder.maxID, sepID >= 0, sepID < VocabularyBuilder.maxID else {
                throw .format("'\(path)': \(type) needs 'cls' and 'sep' as [token, id]")
            }
            return ([Int32(clsID)], [Int32(sepID)])
        default:
            throw .unsupported("'\(path)': post_processor '\(type)' is not supported")
        }
    }
}
