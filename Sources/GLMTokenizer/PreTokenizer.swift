import GLMSupport

/// How a `Split` pre-tokenizer treats the pattern's matches (HF `SplitDelimiterBehavior`).
public enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// One pre-tokenization step, applied to every piece the previous steps produced.
enum PreTokenizerStep: Sendable {
    case split(PatternRegex, behavior: SplitBehavior, invert: Bool)
    /// ByteLevel: optionally prefixes a space to each piece not starting with one; the byte↔char mapping
    /// itself needs no work because this tokenizer keeps vocabulary entries as raw bytes.
    case prefixSpace
}

/// GPT-2's pattern, which HF's ByteLevel pre-tokenizer applies when `use_regex` is true.
let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

/// Reusable buffers for pre-tokenizing one text.
struct PreTokenizerScratch {
    var work: [UInt8] = []
    var pieces: [Range<Int>] = []
    var nextPieces: [Range<Int>] = []
    var scalars: [UInt32] = []
    var bits: [UInt32] = []
    var offsets: [Int] = []
    var matches: [Range<Int>] = []
    var marked: [(range: Range<Int>, isMatch: Bool)] = []
    /// Regex matching memory and the step budget, shared by every split of one call.
    var regex = PatternScratch()
}

struct PreTokenizer: Sendable {
    let steps: [PreTokenizerStep]

    /// Splits `segment` into pre-tokens: afterwards `s.pieces` are their byte ranges in `s.work`, in order.
    /// Throws `.limitExceeded` when a split pattern exhausts the call's matching budget (`PatternBudget`).
    func run(_ segment: UnsafeRawBufferPointer, scratch s: inout PreTokenizerScratch) throws(GLMError) {
        s.work.removeAll(keepingCapacity: true)
        s.work.append(contentsOf: segment)
        s.pieces.removeAll(keepingCapacity: true)
        if !segment.isEmpty { s.pieces.append(0..<segment.count) }
        for step in steps {
            s.nextPieces.removeAll(keepingCapacity: true)
            switch step {
            case .prefixSpace:
                for piece in s.pieces {
                    if s.work[piece.lowerBound] == 0x20 {
                        s.nextPieces.append(piece)
                    } else {
                        let start = s.work.count
                        s.work.append(0x20)
                        s.work.append(contentsOf: s.work[piece])
                        s.nextPieces.append(start..<s.work.count)
                    }
                }
            case .split(let regex, let behavior, let invert):
                for piece in s.pieces {
                    try split(piece, regex: regex, behavior: behavior, invert: invert, scratch: &s)
                }
            }
            swap(&s.pieces, &s.nextPieces)
        }
    }

    private func split(_ piece: Range<Int>, regex: PatternRegex, behavior: SplitBehavior, invert: Bool,
                       scratch s: inout PreTokenizerScratch) throws(GLMError) {
        decodeScalars(piece, scratch: &s)
        s.matches.removeAll(keepingCapacity: true)
        var failure: GLMError? = nil
        s.scalars.withUnsafeBufferPointer { scalars in
            s.bits.withUnsafeBufferPointer { bits in
                do throws(GLMError) {
                    try regex.matches(in: ScalarText(scalars: scalars, bits: bits), scratch: &s.regex, into: &s.matches)
                } catch {
                    failure = error
                }
            }
        }
        if let failure { throw failure }
        // Matches and the gaps between them, in scalar indices, as HF's `find_matches` lists them.
        s.marked.removeAll(keepingCapacity: true)
        var previous = 0
        for m in s.matches {
            if previous != m.lowerBound { s.marked.append((previous..<m.lowerBound, invert)) }
            s.marked.append((m, !invert))
            previous = m.upperBound
        }
        if previous != s.scalars.count { s.marked.append((previous..<s.scalars.count, invert)) }

        let base = piece.lowerBound
        func emit(_ r: Range<Int>) {
            if !r.isEmpty { s.nextPieces.append((base + s.offsets[r.lowerBound])..<(base + s.offsets[r.upperBound])) }
        }
        switch behavior {
        case .isolated:
            for m in s.marked { emit(m.range) }
        case .removed:
            for m in s.marked where !m.isMatch { emit(m.range) }
        case .mergedWithPrevious:
            var merged: [Range<Int>] = []
            var previousMatch = false
            for m in s.marked {
                if m.isMatch && !previousMatch, let last = merged.last {
                    merged[merged.count - 1] = last.lowerBound..<m.range.upperBound
                } else {
                    merged.append(m.range)
                }
                previousMatch = m.isMatch
            }
            for r in merged { emit(r) }
        case .mergedWithNext:
            var merged: [Range<Int>] = []
            var previousMatch = false
            for m in s.marked.reversed() {
                if m.isMatch && !previousMatch, let last = merged.last {
                    merged[merged.count - 1] = m.range.lowerBound..<last.upperBound
                } else {
                    merged.append(m.range)
                }
                previousMatch = m.isMatch
            }
            for r in merged.reversed() { emit(r) }
        case .contiguous:
            var merged: [Range<Int>] = []
            var previousMatch = false
            for m in s.marked {
                if m.isMatch == previousMatch, let last = merged.last {
                    merged[merged.count - 1] = last.lowerBound..<m.range.upperBound
                } else {
                    merged.append(m.range)
                }
                previousMatch = m.isMatch
            }
            for r in merged { emit(r) }
        }
    }

    /// UTF-8 bytes of `piece` (valid: they come from a Swift string) into scalars, class bits and offsets.
    private func decodeScalars(_ piece: Range<Int>, scratch s: inout PreTokenizerScratch) {
        s.scalars.removeAll(keepingCapacity: true)
        s.bits.removeAll(keepingCapacity: true)
        s.offsets.removeAll(keepingCapacity: true)
        s.work.withUnsafeBufferPointer { work in
            var i = piece.lowerBound
            let end = piece.upperBound
            while i < end {
                let b0 = work[i]
                var v: UInt32
                var length: Int
                if b0 < 0x80 {
                    v = UInt32(b0); length = 1
                } else if b0 < 0xE0 {
                    v = UInt32(b0 & 0x1F); length = 2
                } else if b0 < 0xF0 {
                    v = UInt32(b0 & 0x0F); length = 3
                } else {
                    v = UInt32(b0 & 0x07); length = 4
                }
                if i + length > end { length = end - i }
                for k in 1..<max(length, 1) { v = v << 6 | UInt32(work[i + k] & 0x3F) }
                s.offsets.append(i - piece.lowerBound)
                s.scalars.append(v)
                s.bits.append(UnicodeClasses.bits(v))
                i += length
            }
            s.offsets.append(end - piece.lowerBound)
        }
    }
}

extension PatternRegex {
    /// `text` cut as an `Isolated` Split pre-tokenizer with this pattern cuts it: the matches and the gaps
    /// between them, in order. Throws `.limitExceeded` as `Tokenizer.encode` does.
    public func isolatedPieces(_ text: String) throws(GLMError) -> [String] {
        try isolatedSplit(text) { s in s.pieces.map { String(decoding: s.work[$0], as: UTF8.self) } }
    }

    /// The scalar length of each isolated piece, and the matching steps the split took (tests bound the work
    /// with it).
    func isolatedPieceLengths(_ text: String) throws(GLMError) -> (lengths: [Int], steps: Int) {
        try isolatedSplit(text) { s in
            let lengths = s.pieces.map { piece in s.work[piece].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } }
            return (lengths, s.regex.steps)
        }
    }

    private func isolatedSplit<T>(_ text: String, _ result: (PreTokenizerScratch) -> T) throws(GLMError) -> T {
        let pre = PreTokenizer(steps: [.split(self, behavior: .isolated, invert: false)])
        var scratch = PreTokenizerScratch()
        var text = text
        let failure = text.withUTF8 { utf8 -> GLMError? in
            do throws(GLMError) {
                try pre.run(UnsafeRawBufferPointer(utf8), scratch: &scratch)
            } catch {
                return error
            }
            return nil
        }
        if let failure { throw failure }
        return result(scratch)
    }
}
