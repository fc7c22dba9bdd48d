import GLMParsers
import GLMSupport
import GLMTokenizer

/// Tokens to parser events for one completion: the streaming detokenizer (whole UTF-8 characters only), then
/// the stop strings (withholding a possible start of one), then the reasoning/tool-call parser (none for a raw
/// prompt's completion: its text is all content).
struct TextPipeline {
    let tokenizer: Tokenizer
    let parser: StreamingOutputParser?
    var decoder = StreamingDecoder(skipSpecialTokens: false)
    var stops: StopMatcher

    /// Everything released so far, when there is no parser to keep it.
    private var rawText = ""

    init(tokenizer: Tokenizer, parser: StreamingOutputParser?, stopStrings: [String]) {
        self.tokenizer = tokenizer
        self.parser = parser
        self.stops = StopMatcher(stopStrings: stopStrings)
    }

    var stopMatched: Bool { stops.matched != nil }

    mutating func append(_ token: Int32) throws(GLMError) -> [ParserEvent] {
        let piece = try decoder.append(token, from: tokenizer)
        let released = stops.feed(piece)
        return released.isEmpty ? [] : parse(released)
    }

    private mutating func parse(_ released: String) -> [ParserEvent] {
        guard let parser else {
            rawText += released
            return [.content(released)]
        }
        return parser.feed(released)
    }

    /// Ends the text: with `emitHeldText`, what the decoder and the stop matcher still hold goes to the parser
    /// first (a cancelled stream drops it: the caller has stopped listening).
    mutating func finish(emitHeldText: Bool) -> (events: [ParserEvent], output: ParsedOutput) {
        var events: [ParserEvent] = []
        if emitHeldText {
            let released = stops.feed(decoder.finish()) + stops.flush()
            if !released.isEmpty { events = parse(released) }
        }
        guard let parser else {
            return (events, ParsedOutput(reasoning: nil, content: rawText, toolCalls: []))
        }
        let end = parser.finish()
        return (events + end.events, end.output)
    }
}
