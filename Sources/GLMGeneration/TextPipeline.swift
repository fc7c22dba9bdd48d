import GLMParsers
import GLMSupport
import GLMTokenizer

/// Tokens to parser events for one completion: the streaming detokenizer (whole UTF-8 characters only), then
/// the stop strings (withholding a possible start of one), then the reasoning/tool-call parser.
struct TextPipeline {
    let tokenizer: Tokenizer
    let parser: StreamingOutputParser
    var decoder = StreamingDecoder(skipSpecialTokens: false)
    var stops: StopMatcher

    init(tokenizer: Tokenizer, parser: StreamingOutputParser, stopStrings: [String]) {
        self.tokenizer = tokenizer
        self.parser = parser
        self.stops = StopMatcher(stopStrings: stopStrings)
    }

    var stopMatched: Bool { stops.matched != nil }

    mutating func append(_ token: Int32) throws(GLMError) -> [ParserEvent] {
        let piece = try decoder.append(token, from: tokenizer)
        let released = stops.feed(piece)
        return released.isEmpty ? [] : parser.feed(released)
    }

    /// Ends the text: with `emitHeldText`, what the decoder and the stop matcher still hold goes to the parser
    /// first (a cancelled stream drops it: the caller has stopped listening).
    mutating func finish(emitHeldText: Bool) -> (events: [ParserEvent], output: ParsedOutput) {
        var events: [ParserEvent] = []
        if emitHeldText {
            let released = stops.feed(decoder.finish()) + stops.flush()
            if !released.isEmpty { events = parser.feed(released) }
        }
        let end = parser.finish()
        return (events + end.events, end.output)
    }
}
