import GLMFormats
import GLMSupport

/// A byte-level BPE tokenizer (GLM-4.x, Qwen2, GPT-2, Llama-3 style), loaded from an HF `tokenizer.json`
/// (+ `tokenizer_config.json`) or from GGUF `tokenizer.ggml.*` metadata. Every id, pattern and flag comes
/// from the files. Immutable after load and safe to share across threads.
///
/// `encode` follows HF `tokenizers`: added tokens are cut out first (leftmost-longest, special or not),
/// the rest is normalized, pre-tokenized by the configured regex splits, and each pre-token is BPE-encoded.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let preTokenizer: PreTokenizer
    let normalizers: [NormalizerStep]
    /// Added tokens matched on the raw text (special ones and those with `normalized: false`).
    let rawAddedTokens: AddedTokenMatcher
    /// Added tokens matched after normalization (`normalized: true`).
    let normalizedAddedTokens: AddedTokenMatcher
    let specialFlags: [Bool]
    let addedTokenIDs: [String: Int32]
    /// Ids the post-processor puts around the text when `addSpecialTokens` is true.
    let prefixIDs: [Int32]
    let suffixIDs: [Int32]

    /// Number of ids (highest id + 1); ids in gaps decode to nothing.
    public let vocabSize: Int
    public let addedTokens: [AddedToken]
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let padTokenID: Int32?
    public let unknownTokenID: Int32?
    /// Where the tokenizer came from (for messages).
    public let source: String

    struct Parts {
        var model: BPEModel
        var preTokenizer: PreTokenizer
        var normalizers: [NormalizerStep] = []
        var addedTokens: [AddedToken] = []
        var prefixIDs: [Int32] = []
        var suffixIDs: [Int32] = []
        var bos: Int32? = nil
        var eos: Int32? = nil
        var pad: Int32? = nil
        var unknown: Int32? = nil
        var source: String
    }

    init(_ parts: Parts) {
        model = parts.model
        preTokenizer = parts.preTokenizer
        normalizers = parts.normalizers
        addedTokens = parts.addedTokens
        rawAddedTokens = AddedTokenMatcher(parts.addedTokens.filter { $0.special || !$0.normalized })
        normalizedAddedTokens = AddedTokenMatcher(parts.addedTokens.filter { !$0.special && $0.normalized })
        vocabSize = parts.model.tokens.count
        var flags = [Bool](repeating: false, count: vocabSize)
        var ids: [String: Int32] = [:]
        for t in parts.addedTokens {
            if t.special && Int(t.id) < vocabSize { flags[Int(t.id)] = true }
            ids[t.content] = t.id
        }
        specialFlags = flags
        addedTokenIDs = ids
        prefixIDs = parts.prefixIDs
        suffixIDs = parts.suffixIDs
        bosTokenID = parts.bos
        eosTokenID = parts.eos
        padTokenID = parts.pad
        unknownTokenID = parts.unknown
        source = parts.source
    }

    /// Loads from a `tokenizer.json` file, a `.gguf` file, or a model directory holding `tokenizer.json`.
    public static func load(path: String) throws(GLMError) -> Tokenizer {
        if FileSystem.isDirectory(path) {
            let json = FileSystem.join(path, "tokenizer.json")
            guard FileSystem.exists(json) else {
                throw .io("'\(path)' has no tokenizer.json")
            }
            return try load(tokenizerJSON: json)
        }
        if path.hasSuffix(".gguf") {
            return try load(gguf: GGUFFile(path: path))
        }
        return try load(tokenizerJSON: path)
    }

    // MARK: encoding

    /// Token ids for `text`; with `addSpecialTokens` the post-processor's tokens (BOS...) are added.
    /// Throws `.limitExceeded` when the pre-tokenizer regex needs more matching work than `PatternBudget`
    /// allows for a text of this length (only a pathological `pre_tokenizer` pattern does).
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws(GLMError) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecialTokens { out.append(contentsOf: prefixIDs) }
        var state = EncodeState()
        var text = text
        let failure = text.withUTF8 { utf8 -> GLMError? in
            let raw = UnsafeRawBufferPointer(utf8)
            var segments: [(range: Range<Int>, token: Int32?)] = []
            rawAddedTokens.split(raw, offset: 0, into: &segments)
            do throws(GLMError) {
                for segment in segments {
                    if let id = segment.token {
                        out.append(id)
                    } else if normalizers.isEmpty {
                        try encodeNormalized(UnsafeRawBufferPointer(rebasing: raw[segment.range]), state: &state, into: &out)
                    } else {
                        var normalized = String(decoding: raw[segment.range], as: UTF8.self)
                        for step in normalizers { normalized = step.apply(normalized) }
                        let failure = normalized.withUTF8 { n -> GLMError? in
                            do throws(GLMError) {
                                try encodeNormalized(UnsafeRawBufferPointer(n), state: &state, into: &out)
                            } catch {
                                return error
                            }
                            return nil
                        }
                        if let failure { throw failure }
                    }
                }
            } catch {
                return error
            }
            return nil
        }
        if let failure { throw failure }
        if addSpecialTokens { out.append(contentsOf: suffixIDs) }
        return out
    }

    private struct EncodeState {
        var pre = PreTokenizerScratch()
        var bpe = BPEScratch()
        var segments: [(range: Range<Int>, token: Int32?)] = []
    }

    private func encodeNormalized(_ text: UnsafeRawBufferPointer, state: inout EncodeState,
                                  into out: inout [Int32]) throws(GLMError) {
        state.segments.removeAll(keepingCapacity: true)
        normalizedAddedTokens.split(text, offset: 0, into: &state.segments)
        let segments = state.segments
        for segment in segments {
            if let id = segment.token {
                out.append(id)
                continue
            }
            try preTokenizer.run(UnsafeRawBufferPointer(rebasing: text[segment.range]), scratch: &state.pre)
            let work = state.pre.work, pieces = state.pre.pieces
            work.withUnsafeBytes { work in
                for piece in pieces {
                    model.encode(UnsafeRawBufferPointer(rebasing: work[piece]), scratch: &state.bpe, into: &out)
                }
            }
        }
    }

    // MARK: vocabulary

    /// The id of a vocabulary entry written as in tokenizer.json (`"Ġthe"`, `"<think>"`), or nil.
    public func tokenID(for token: String) -> Int32? {
        if let id = addedTokenIDs[token] { return id }
        var token = token
        return token.withUTF8 { utf8 -> Int32? in
            guard let bytes = ByteLevel.decode(UnsafeRawBufferPointer(utf8)) else { return nil }
            return bytes.withUnsafeBytes { model.tokens.find($0) }
        }
    }

    /// True for added tokens marked special (those `skipSpecialTokens` removes).
    public func isSpecial(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < vocabSize && specialFlags[Int(id)]
    }

    /// The raw bytes token `id` stands for (may be part of a UTF-8 character).
    public func tokenBytes(_ id: Int32) throws(GLMError) -> [UInt8] {
        try checkID(id, position: nil)
        return Array(model.tokens.bytes(of: id))
    }

    /// Token `id` as its vocabulary string (byte-level alphabet for BPE entries, literal text for added tokens).
    public func tokenString(_ id: Int32) throws(GLMError) -> String {
        try checkID(id, position: nil)
        if let added = addedTokens.last(where: { $0.id == id }) { return added.content }
        return ByteLevel.encode(Array(model.tokens.bytes(of: id)))
    }

    func checkID(_ id: Int32, position: Int?) throws(GLMError) {
        guard id >= 0 && Int(id) < vocabSize else {
            let at = position.map { " at position \($0)" } ?? ""
            throw .invalidArgument("token id \(id)\(at) is out of range (vocabulary size \(vocabSize))")
        }
    }

    // MARK: decoding

    /// The bytes of `ids` concatenated (special tokens left out when asked).
    public func decodeBytes(_ ids: [Int32], skipSpecialTokens: Bool = false) throws(GLMError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for (i, id) in ids.enumerated() {
            try checkID(id, position: i)
            if skipSpecialTokens && specialFlags[Int(id)] { continue }
            model.tokens.withBytes(of: id) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Text for `ids`; invalid UTF-8 becomes U+FFFD (one per maximal invalid subsequence, as HF's
    /// `from_utf8_lossy`). Throws on an id outside the vocabulary.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) throws(GLMError) -> String {
        String(decoding: try decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }
}
