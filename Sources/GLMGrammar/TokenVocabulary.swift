import GLMSupport
import GLMTokenizer
import Glibc

/// The byte strings of a tokenizer's ids as prefix trees, built once per tokenizer and shared (immutable).
///
/// Masks are computed by walking a trie against the lexer (a rejected byte skips its whole subtree). Most of a
/// vocabulary is plain text, and inside a JSON string or free text nearly all of it is allowed, so the
/// vocabulary is also cut into slices: plain-text tokens by length in characters (no `"`, `\`, `<` or control
/// characters), text with control characters, and the rest. When the lexer state provably accepts every string
/// of a slice's character class up to the slice's length, the slice's precomputed bitset is copied instead of
/// walking its trie (the idea of llguidance's "slicer", done here with a containment search per lexer state).
///
/// Ids marked special are never matched as text (only an end-of-sequence id, handled by the matcher, may be
/// allowed); ids with no bytes are never allowed.
public final class TokenVocabulary: @unchecked Sendable {
    /// The number of ids (bits in a mask).
    public let size: Int
    let offsets: [Int32]
    let arena: [UInt8]
    let special: [Bool]
    let full: TokenTrie
    let slices: [Slice]

    struct Slice {
        /// 0: plain characters, 1: text (plain plus control characters), -1: the rest (always walked).
        var characterClass: Int
        /// The longest and shortest token of the slice in characters.
        var maxCharacters: Int
        var minCharacters: Int
        var trie: TokenTrie
        var bitset: [UInt64]
        var count: Int
    }

    /// Plain-text slices by length in characters (the last one open-ended), then text, then the rest.
    static let plainLengthBuckets: [ClosedRange<Int>] = [1...1, 2...2, 3...3, 4...4, 5...5, 6...6, 7...7, 8...8,
                                                         9...10, 11...12, 13...16, 17...Int.max]
    /// Longer ids are never allowed (bounds the walk's depth; no real vocabulary has such tokens).
    static let maxTokenBytes = 1024
    /// How many characters the containment search follows before it needs a cycle to say "any length".
    static let containmentDepth = 16

    /// Characters of class 0 (plain) and class 1 (text).
    static let plainCharacters = CharSet([0x00...0x1F, 0x7F...0x7F, 0x22...0x22, 0x5C...0x5C, 0x3C...0x3C]).complement
    static let textCharacters = CharSet([0x22...0x22, 0x5C...0x5C, 0x3C...0x3C]).complement

    public var wordCount: Int { (size + 63) / 64 }

    init(tokens: [[UInt8]], special: [Bool]) {
        size = tokens.count
        var offsets: [Int32] = [0]
        var arena: [UInt8] = []
        arena.reserveCapacity(tokens.reduce(0) { $0 + $1.count })
        for t in tokens {
            arena.append(contentsOf: t)
            offsets.append(Int32(arena.count))
        }
        self.offsets = offsets
        self.arena = arena
        self.special = special

        var eligible: [Int32] = []
        var byBucket = [[Int32]](repeating: [], count: TokenVocabulary.plainLengthBuckets.count)
        var text: [Int32] = []
        var rest: [Int32] = []
        for (id, bytes) in tokens.enumerated()
        where !bytes.isEmpty && bytes.count <= TokenVocabulary.maxTokenBytes && !special[id] {
            eligible.append(Int32(id))
            switch TokenVocabulary.classify(bytes) {
            case .plain(let n):
                let b = TokenVocabulary.plainLengthBuckets.firstIndex { $0.contains(n) } ?? 0
                byBucket[b].append(Int32(id))
            case .text: text.append(Int32(id))
            case .other: rest.append(Int32(id))
            }
        }
        full = TokenTrie(ids: eligible, offsets: offsets, arena: arena)
        var slices: [Slice] = []
        func slice(_ ids: [Int32], _ cls: Int, _ maxChars: Int) {
            guard !ids.isEmpty else { return }
            let minChars = cls < 0 ? 0 : ids.map { TokenVocabulary.characterCount(tokens[Int($0)]) }.min() ?? 0
            var bits = [UInt64](repeating: 0, count: (tokens.count + 63) / 64)
            for id in ids { bits[Int(id) >> 6] |= 1 << UInt64(id & 63) }
            slices.append(Slice(characterClass: cls, maxCharacters: maxChars, minCharacters: minChars,
                                trie: TokenTrie(ids: ids, offsets: offsets, arena: arena), bitset: bits, count: ids.count))
        }
        for (b, ids) in byBucket.enumerated() {
            let longest = ids.map { TokenVocabulary.characterCount(tokens[Int($0)]) }.max() ?? 0
            slice(ids, 0, min(longest, TokenVocabulary.plainLengthBuckets[b].upperBound))
        }
        slice(text, 1, text.map { TokenVocabulary.characterCount(tokens[Int($0)]) }.max() ?? 0)
        slice(rest, -1, 0)
        self.slices = slices
    }

    private enum TokenClass { case plain(Int), text, other }

    private static func classify(_ bytes: [UInt8]) -> TokenClass {
        guard let s = String(validating: bytes, as: UTF8.self) else { return .other }
        var count = 0
        var control = false
        for u in s.unicodeScalars {
            count += 1
            switch u.value {
            case 0x22, 0x5C, 0x3C: return .other
            case 0x00...0x1F, 0x7F: control = true
            default: break
            }
        }
        return control ? .text : .plain(count)
    }

    private static func characterCount(_ bytes: [UInt8]) -> Int {
        bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    /// Whether `id` can ever be allowed as text.
    func isText(_ id: Int32) -> Bool {
        guard id >= 0 && Int(id) < size && !special[Int(id)] else { return false }
        let length = offsets[Int(id) + 1] - offsets[Int(id)]
        return length > 0 && length <= TokenVocabulary.maxTokenBytes
    }

    func withBytes<R>(of id: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws(GLMError) -> R) throws(GLMError) -> R {
        let lo = Int(offsets[Int(id)]), hi = Int(offsets[Int(id) + 1])
        return try arena.withUnsafeBufferPointer { (all) throws(GLMError) -> R in
            try body(UnsafeBufferPointer(rebasing: all[lo..<hi]))
        }
    }

    // MARK: one per tokenizer

    private static var cache: [ObjectIdentifier: (tokenizer: WeakTokenizer, vocabulary: TokenVocabulary)] = [:]
    private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    private final class WeakTokenizer {
        weak var value: Tokenizer?
        init(_ value: Tokenizer) { self.value = value }
    }

    /// The vocabulary of `tokenizer`, built on first use (tens of milliseconds for 150k ids) and kept while the
    /// tokenizer lives.
    public static func of(_ tokenizer: Tokenizer) throws(GLMError) -> TokenVocabulary {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let key = ObjectIdentifier(tokenizer)
        if let entry = cache[key], entry.tokenizer.value === tokenizer { return entry.vocabulary }
        // Drop entries whose tokenizer is gone (their identifiers may be reused).
        cache = cache.filter { $0.value.tokenizer.value != nil }
        var tokens: [[UInt8]] = []
        var special: [Bool] = []
        tokens.reserveCapacity(tokenizer.vocabSize)
        for id in 0..<tokenizer.vocabSize {
            tokens.append(try tokenizer.tokenBytes(Int32(id)))
            special.append(tokenizer.isSpecial(Int32(id)))
        }
        let vocabulary = TokenVocabulary(tokens: tokens, special: special)
        cache[key] = (WeakTokenizer(tokenizer), vocabulary)
        return vocabulary
    }
}

/// A prefix tree of byte strings laid out in preorder: node i's subtree is i ..< skip[i], so a rejected byte
/// skips it in one step, and a node's depth says which walk state is its parent's.
struct TokenTrie {
    var bytes: [UInt8] = []
    /// 1-based depth of each node (its byte's position in the token + 1).
    var depth: [UInt16] = []
    var skip: [Int32] = []
    /// The id ending at each node, -1 for none; ids with the same bytes as an earlier one in `extra`, and the
    /// node's id is then stored as -2 - id so the walk finds out without a lookup.
    var token: [Int32] = []
    var extra: [Int32: [Int32]] = [:]
    var maxDepth = 0

    var nodeCount: Int { bytes.count }

    init(ids: [Int32], offsets: [Int32], arena: [UInt8]) {
        let sorted = arena.withUnsafeBufferPointer { a in
            ids.sorted { x, y in
                let xl = Int(offsets[Int(x)]), xh = Int(offsets[Int(x) + 1])
                let yl = Int(offsets[Int(y)]), yh = Int(offsets[Int(y) + 1])
                var i = 0
                while xl + i < xh && yl + i < yh {
                    let p = a[xl + i], q = a[yl + i]
                    if p != q { return p < q }
                    i += 1
                }
                if xh - xl != yh - yl { return xh - xl < yh - yl }
                return x < y
            }
        }
        var path: [Int32] = []           // node index at each depth of the current path
        var previous: ArraySlice<UInt8> = []
        for id in sorted {
            let lo = Int(offsets[Int(id)]), hi = Int(offsets[Int(id) + 1])
            let current = arena[lo..<hi]
            var common = 0
            while common < previous.count && common < current.count
                    && previous[previous.startIndex + common] == current[current.startIndex + common] {
                common += 1
            }
            while path.count > common {
                let node = path.removeLast()
                skip[Int(node)] = Int32(bytes.count)
            }
            for k in common..<current.count {
                path.append(Int32(bytes.count))
                bytes.append(current[current.startIndex + k])
                depth.append(UInt16(clamping: k + 1))
                skip.append(0)
                token.append(-1)
            }
            maxDepth = max(maxDepth, current.count)
            if let last = path.last {
                let current = token[Int(last)]
                if current == -1 {
                    token[Int(last)] = id
                } else {
                    if current >= 0 { token[Int(last)] = -2 - current }
                    extra[last, default: []].append(id)
                }
            }
            previous = current
        }
        while let node = path.popLast() { skip[Int(node)] = Int32(bytes.count) }
    }
}
