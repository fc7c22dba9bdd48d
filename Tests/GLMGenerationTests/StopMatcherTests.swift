import Testing
@testable import GLMGeneration

/// Stop strings are matched on the text across token boundaries; only a tail that could still become a stop
/// string is withheld, and the stop string itself never appears (vLLM, include_stop_str_in_output=false).
@Suite struct StopMatcherTests {
    func run(_ stops: [String], _ pieces: [String]) -> (released: [String], matched: String?, flushed: String) {
        var m = StopMatcher(stopStrings: stops)
        let released = pieces.map { m.feed($0) }
        let flushed = m.flush()
        return (released, m.matched, flushed)
    }

    @Test func withoutStopStringsEverythingPasses() {
        let r = run([], ["a", "b"])
        #expect(r.released == ["a", "b"] && r.matched == nil && r.flushed == "")
    }

    @Test func aStopStringInsideOnePiece() {
        let r = run(["STOP"], ["Hello wor", "ld! STOP here", "more"])
        #expect(r.released == ["Hello wor", "ld! ", ""])
        #expect(r.matched == "STOP")
        #expect(r.flushed == "")
    }

    @Test func aStopStringSplitAcrossPiecesIsWithheldThenDropped() {
        let r = run(["</end>"], ["abc</", "en", "d>xyz"])
        #expect(r.released == ["abc", "", ""])
        #expect(r.matched == "</end>")
    }

    @Test func aFalseStartIsReleasedAsSoonAsItCannotMatch() {
        let r = run(["</end>"], ["abc<", "/x", "y"])
        #expect(r.released == ["abc", "</x", "y"])
        #expect(r.matched == nil)
    }

    @Test func theWithheldTailIsFlushedAtTheEnd() {
        let r = run(["</end>"], ["abc</en"])
        #expect(r.released == ["abc"])
        #expect(r.flushed == "</en")
    }

    @Test func overlappingPrefixes() {
        // "aaab" with stop "aab": the output is "a".
        let r = run(["aab"], ["aaa", "b"])
        #expect(r.released == ["a", ""])
        #expect(r.matched == "aab")
    }

    @Test func theEarliestOccurrenceWinsAndThenListOrder() {
        #expect(run(["world", "lo w"], ["hello world"]).released == ["hel"])
        #expect(run(["lo", "low"], ["below"]).matched == "lo")
        #expect(run(["low", "lo"], ["below"]).matched == "low")
    }

    @Test func unicodeScalarsAcrossPieces() {
        let r = run(["é!"], ["café", "!", " après"])
        #expect(r.released == ["caf", "", ""])
        #expect(r.matched == "é!")
        let s = run(["日本"], ["今日", "は日", "本語"])
        #expect(s.released == ["今", "日は", ""])   // a trailing 日 could start 日本
    }

    @Test func emptyStopStringsAreIgnored() {
        let r = run([""], ["abc"])
        #expect(r.released == ["abc"] && r.matched == nil)
    }
}
