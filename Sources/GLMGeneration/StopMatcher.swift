/// Finds stop strings in generated text that arrives in pieces, across token boundaries.
///
/// `feed` returns the text that is safe to show: everything except a tail that could still grow into a stop
/// string. When a stop string completes, the text before it is released and the stop string itself (and all
/// after it) is dropped, as vLLM does with `include_stop_str_in_output=false`. Matching is on Unicode scalars,
/// the unit of Python's `str.find`.
public struct StopMatcher: Sendable {
    public let stopStrings: [String]
    private let patterns: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []
    public private(set) var matched: String?

    public init(stopStrings: [String]) {
        self.stopStrings = stopStrings
        self.patterns = stopStrings.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
    }

    /// Text released by this piece. After a match it is the text before the stop string, and every later
    /// call returns "".
    public mutating func feed(_ text: String) -> String {
        if matched != nil { return "" }
        if patterns.isEmpty { return text }
        pending.append(contentsOf: text.unicodeScalars)
        if let (start, pattern) = earliestMatch() {
            let released = String(String.UnicodeScalarView(pending[..<start]))
            matched = String(String.UnicodeScalarView(pattern))
            pending = []
            return released
        }
        let keep = longestPartialSuffix()
        let released = String(String.UnicodeScalarView(pending[..<(pending.count - keep)]))
        pending.removeFirst(pending.count - keep)
        return released
    }

    /// The withheld tail, released when generation ends for another reason (eos, length, cancel).
    public mutating func flush() -> String {
        let rest = String(String.UnicodeScalarView(pending))
        pending = []
        return matched == nil ? rest : ""
    }

    /// The first position where any stop string occurs in `pending`; on equal positions the earlier string in
    /// the list wins.
    private func earliestMatch() -> (Int, [Unicode.Scalar])? {
        var best: (Int, [Unicode.Scalar])?
        for pattern in patterns where pattern.count <= pending.count {
            let limit = best?.0 ?? (pending.count - pattern.count)
            var start = 0
            while start <= min(limit, pending.count - pattern.count) {
                if pending[start..<(start + pattern.count)].elementsEqual(pattern) {
                    if start < (best?.0 ?? Int.max) { best = (start, pattern) }
                    break
                }
                start += 1
            }
        }
        return best
    }

    /// Length of the longest tail of `pending` that is a proper prefix of some stop string.
    private func longestPartialSuffix() -> Int {
        var longest = 0
        for pattern in patterns {
            let upper = min(pattern.count - 1, pending.count)
            var length = upper
            while length > longest {
                if pending[(pending.count - length)...].elementsEqual(pattern[..<length]) {
                    longest = length
                    break
                }
                length -= 1
            }
        }
        return longest
    }
}
