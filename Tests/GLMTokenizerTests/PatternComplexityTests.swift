@testable import GLMTokenizer
import Glibc
import GLMSupport
import Testing

// Pre-tokenization cost (issue 17). The shipped patterns must split any text in work linear in its length;
// a pattern that would backtrack without end must stop with `.limitExceeded` after a bounded amount of work
// (never with a different split); and the budget belongs to the whole call, not to one search or segment.
// Work is measured in VM steps (PatternBudget's unit), never in time.

/// GLM-4's split pattern, as glm-tiny's tokenizer.json and GLM-4.7's write it.
private let glm4Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// A run of one repeated unit, with the pieces GLM-4's pattern cuts it into and its glm-tiny ids, both
/// worked out by hand from the pattern and the vocabulary (and equal to HF tokenizers' on runs of 999,999
/// scalars; HF's own Oniguruma split gives up on 10 MB of spaces with "retry-limit-in-match over").
struct LongRun: CustomTestStringConvertible, Sendable {
    let name: String
    let unit: String
    /// Scalar lengths of the pieces for `count` units.
    let pieces: @Sendable (Int) -> [Int]
    /// glm-tiny ids for `count` units.
    let ids: @Sendable (Int) -> [Int32]
    var testDescription: String { name }

    func text(_ count: Int) -> String { String(repeating: unit, count: count) }
}

let longRuns: [LongRun] = [
    // `\s*[\r\n]+` finds no newline; `\s+(?!\S)` takes the run to the end of the text. 'Ġ'×32 (891) is the
    // longest run-of-spaces token and merges pair spaces left to right (2, 4, 8, 16, 32), so 32k spaces are k×891.
    LongRun(name: "spaces", unit: " ", pieces: { [$0] }, ids: { Array(repeating: 891, count: $0 / 32) }),
    // `\s*[\r\n]+` takes the whole run; 'ĊĊ' (297) pairs newlines, 'ĊĊĊ' only ends an odd run.
    LongRun(name: "newlines", unit: "\n", pieces: { [$0] }, ids: { Array(repeating: 297, count: $0 / 2) }),
    // `\s*[\r\n]+` runs to the last newline, `\s+(?!\S)` takes the final space; no merge joins 'Ċ' and 'Ġ'.
    LongRun(name: "newline-space", unit: "\n ", pieces: { [2 * $0 - 1, 1] },
            ids: { Array([[Int32]](repeating: [198, 220], count: $0).joined()) }),
    // Like spaces; the vocabulary has no token of two tabs ('ĉ' is 197).
    LongRun(name: "tabs", unit: "\t", pieces: { [$0] }, ids: { Array(repeating: 197, count: $0) }),
    // `\p{L}+`; 中 is E4 B8 AD: 'ä¸' (1799) is a token, nothing joins it with 'Ń' (255).
    LongRun(name: "cjk", unit: "中", pieces: { [$0] },
            ids: { Array([[Int32]](repeating: [1799, 255], count: $0).joined()) }),
    // `\p{N}{1,3}`: pieces of three digits, each '11' (1262) + '1' (16).
    LongRun(name: "digits", unit: "1", pieces: { Array(repeating: 3, count: $0 / 3) },
            ids: { Array([[Int32]](repeating: [1262, 16], count: $0 / 3).joined()) }),
    // `[^\r\n\p{L}\p{N}]?\p{L}+`; no 'aa' token ('a' is 64).
    LongRun(name: "letters", unit: "a", pieces: { [$0] }, ids: { Array(repeating: 64, count: $0) }),
]

/// Steps per scalar the GLM-4 pattern may take on a run: a few passes over it (the measured worst on any
/// text is about 31), far below what a rescan from every start position would cost.
private let linearStepsPerScalar = 16

@Test func everyLongRunIsChecked() {
    #expect(longRuns.count == 7)
}

@Test(arguments: longRuns)
func longRunsSplitInLinearWork(run: LongRun) throws {
    let regex = try PatternRegex(glm4Pattern)
    let count = 300_000 // a multiple of 3 for the digits
    let text = run.text(count)
    let scalars = text.unicodeScalars.count
    let (lengths, steps) = try regex.isolatedPieceLengths(text)
    #expect(lengths == run.pieces(count))
    #expect(steps <= linearStepsPerScalar * scalars, "\(steps) steps for \(scalars) scalars")
}

/// 10 MB of spaces: the old VM gave up on each start position after 10 M backtracks and retried one position
/// later, so it cut single spaces off the front (and above 10.1 MB never finished).
@Test func tenMegabytesOfSpacesAreOnePiece() throws {
    let regex = try PatternRegex(glm4Pattern)
    let count = 10_000_000
    let (lengths, steps) = try regex.isolatedPieceLengths(String(repeating: " ", count: count))
    #expect(lengths == [count])
    #expect(steps <= linearStepsPerScalar * count)
}

@Test(arguments: longRuns)
func longRunsEncodeToHandDerivedIDs(run: LongRun) throws {
    let tokenizer = try Tokenizer.load(path: fixturesDirectory + "/glm-tiny")
    let count = 96_000 / run.unit.unicodeScalars.count // a multiple of 32 and of 3
    let ids = try tokenizer.encode(run.text(count), addSpecialTokens: false)
    #expect(ids.count == run.ids(count).count)
    #expect(ids == run.ids(count))
}

/// The other shipped patterns stay linear too, on runs that make a backtracking matcher rescan (`\s+$` of
/// deepseek-llm over spaces not followed by a newline used to cost the square of the run).
@Test func everyShippedPatternIsLinearOnLongRuns() throws {
    var patterns: Set<String> = [gpt2Pattern, glm4Pattern]
    for name in GGUFPreTokenizer.supportedNames {
        let (familyPatterns, _) = try #require(GGUFPreTokenizer.configuration(for: name))
        patterns.formUnion(familyPatterns)
    }
    #expect(patterns.count >= 15)
    let blocks = [" ", "\n", "\r\n", " \n", "\t", "中", "1", "a", "A", "'", "!", " 1", "!\n", "aA", "e\u{301}",
                  String(repeating: " ", count: 1000) + "x", "\n" + String(repeating: " ", count: 1000) + "x",
                  String(repeating: "A", count: 1000) + "'s", String(repeating: "!", count: 1000) + "\n"]
    for pattern in patterns {
        let regex = try PatternRegex(pattern)
        for block in blocks {
            // Long enough that rescanning a run from each of its positions would cost hundreds of steps per scalar.
            let text = String(repeating: block, count: 12_000 / block.unicodeScalars.count)
            let scalars = text.unicodeScalars.count
            let (lengths, steps) = try regex.isolatedPieceLengths(text)
            #expect(lengths.reduce(0, +) == scalars)
            // The measured worst over these patterns and texts is about 31 steps per scalar.
            #expect(steps <= 64 * scalars, "\(pattern) on \(block.prefix(8).debugDescription): \(steps) steps")
        }
    }
}

@Test func nestedQuantifiersEndInLimitExceeded() throws {
    let regex = try PatternRegex("(a+)+$")
    let text = String(repeating: "a", count: 5000) + "!"
    do {
        let pieces = try regex.isolatedPieces(text)
        Issue.record("split into \(pieces.count) pieces instead of failing")
    } catch {
        #expect(error.code == .limitExceeded)
        #expect(error.message.contains("matching budget"), "\(error.message)")
        #expect(error.message.contains("PatternBudget"), "\(error.message)")
        #expect(error.message.contains("(a+)+$"), "\(error.message)")
    }
}

/// glm-tiny with its split pattern replaced, as a temporary tokenizer.json.
private func glmTinyWithPattern(_ pattern: String, _ name: String) throws -> Tokenizer {
    let original = try FileSystem.readText(fixturesDirectory + "/glm-tiny/tokenizer.json")
    let key = "\"Regex\": \""
    let start = try #require(original.firstRange(of: key)).upperBound
    let end = try #require(original[start...].firstRange(of: "\"\n")).lowerBound
    let escaped = pattern.unicodeScalars.map { $0 == "\\" ? "\\\\" : String($0) }.joined()
    let text = String(original[..<start]) + escaped + String(original[end...])
    let dir = "/tmp/glm-pattern-test-\(getpid())-\(name)"
    mkdir(dir, 0o755)
    let path = dir + "/tokenizer.json"
    defer { unlink(path); rmdir(dir) }
    let f = try #require(fopen(path, "wb"))
    _ = text.utf8CString.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count - 1, f) }
    fclose(f)
    return try Tokenizer.load(path: path)
}

@Test func encodeWithNestedQuantifiersThrowsLimitExceeded() throws {
    let tokenizer = try glmTinyWithPattern("(a+)+$", "nested")
    // A short text still splits (the budget starts at PatternBudget.base steps).
    #expect(try tokenizer.encode("aaaa!", addSpecialTokens: false).count >= 1)
    #expect {
        _ = try tokenizer.encode(String(repeating: "a", count: 5000) + "!", addSpecialTokens: false)
    } throws: { error in
        (error as? GLMError)?.code == .limitExceeded
    }
}

/// `\s*\n|\s` on n spaces: every search scans the rest of the run for a newline and backtracks over it
/// before taking one space, so n spaces cost at least n² steps. 1,400 spaces (≥ 1.96 M steps) fit in one
/// call's allowance (1 M + 1,000 per scalar = 2.4 M); ten such segments in one call (≥ 19.6 M steps against
/// 1 M + 10 × 1.4 M) do not, although each segment alone would: the budget is the call's, not a segment's.
@Test func theBudgetCoversTheWholeCall() throws {
    let tokenizer = try glmTinyWithPattern(#"\s*\n|\s"#, "quadratic")
    let segment = String(repeating: " ", count: 1400)
    let one = try tokenizer.encode(segment, addSpecialTokens: false)
    #expect(one == Array(repeating: 220, count: 1400))
    let think = try #require(tokenizer.tokenID(for: "<think>"))
    let ten = Array(repeating: segment, count: 10).joined(separator: "<think>")
    #expect {
        _ = try tokenizer.encode(ten, addSpecialTokens: false)
    } throws: { error in
        (error as? GLMError)?.code == .limitExceeded
    }
    // Each segment in a call of its own is fine.
    #expect(try tokenizer.encode(segment + "<think>", addSpecialTokens: false) == one + [think])
}

/// Random small patterns with nested, lazy, possessive and atomic quantifiers, lookaheads and anchors, split
/// by HF tokenizers (Oniguruma): remembering explored states must never change a split
/// (tools/make_backtracking_cases.py).
@Test func backtrackingPatternsSplitAsOniguruma() throws {
    var checked = 0, mismatches = 0
    for c in try jsonLines("backtracking_cases.jsonl") {
        let pattern = try #require(c["pattern"]?.stringValue)
        let regex = try PatternRegex(pattern)
        let texts = c["texts"]?.arrayValue ?? []
        let pieces = c["pieces"]?.arrayValue ?? []
        #expect(texts.count == pieces.count)
        for (text, expected) in zip(texts, pieces) {
            let text = text.stringValue ?? ""
            let want = (expected.arrayValue ?? []).compactMap(\.intValue)
            let got = try regex.isolatedPieceLengths(text).lengths
            if got != want {
                mismatches += 1
                if mismatches <= 5 { Issue.record("\(pattern) on \(text.debugDescription): got \(got), want \(want)") }
            }
            checked += 1
        }
    }
    #expect(checked == 3200)
    #expect(mismatches == 0)
}
