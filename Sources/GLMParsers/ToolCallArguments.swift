import GLMJSON

/// Builds one call's arguments JSON from its `<arg_key>K</arg_key><arg_value>V</arg_value>` pairs, as a sequence
/// of text pieces whose concatenation is the final JSON (what the stream sends as argument deltas).
///
/// A pair is `<arg_key>`, the key (stripped), `</arg_key>`, only whitespace, `<arg_value>`, then the raw value up
/// to the first `</arg_value>`, like vLLM's `<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>`. Inside a key
/// only `</arg_key>` is a tag and inside a value only `</arg_value>` (see `recognizedTags`): every other tag there,
/// `</tool_call>` included, is key or value text. Text between pairs is ignored.
///
/// Spelling follows vLLM's `json.dumps(..., ensure_ascii=False)`: `{"k": "v", "n": 1}`. Timing follows vLLM's
/// deltas: `{"key": ` (plus `"` for a streamed string) when the value opens; string characters as they come;
/// a closed value's end (`"` or the typed JSON) together with the next pair's opening or with the final `}`.
struct ToolCallArguments {
    private enum Phase {
        case betweenPairs
        case readingKey
        case afterKey
        case readingValue
    }

    private let function: ToolCatalog.Function
    private var phase = Phase.betweenPairs
    private var keyBytes: [UInt8] = []
    private var key = ""
    private var valueBytes: [UInt8] = []
    private var valueStreams = false
    private var pairCount = 0
    /// The end of the last closed value, sent with whatever comes next.
    private var closing = ""
    /// Everything produced so far: the arguments JSON once `finish()` has run.
    private(set) var json = ""

    init(function: ToolCatalog.Function) {
        self.function = function
    }

    /// Feeds call text; returns the JSON piece it produces ("" for none).
    mutating func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        switch phase {
        case .betweenPairs:
            return ""
        case .readingKey:
            keyBytes.append(contentsOf: bytes)
            return ""
        case .afterKey:
            if !PythonText.isAllWhitespace(bytes) { phase = .betweenPairs }
            return ""
        case .readingValue:
            if valueStreams {
                let piece = JSONStringEscaping.escaped(bytes)
                json += piece
                return piece
            }
            valueBytes.append(contentsOf: bytes)
            return ""
        }
    }

    /// The tags that mean something in the current phase; the call's owner matches only these (`</tool_call>`
    /// is in the list where it ends the call, and the owner handles it).
    var recognizedTags: TagSet {
        switch phase {
        case .betweenPairs: Self.betweenPairsTags
        case .readingKey: Self.keyTags
        case .afterKey: Self.afterKeyTags
        case .readingValue: Self.valueTags
        }
    }

    private static let betweenPairsTags = TagSet([.argKeyStart, .toolCallEnd])
    private static let keyTags = TagSet([.argKeyEnd])
    private static let afterKeyTags = TagSet([.argValueStart, .argKeyStart, .toolCallEnd])
    private static let valueTags = TagSet([.argValueEnd])

    /// Whether a value is open: its text so far is kept if the output ends here.
    var isReadingValue: Bool { phase == .readingValue }

    /// Feeds one of the argument tags; returns the JSON piece it produces ("" for none).
    mutating func tag(_ tag: OutputTag) -> String {
        switch (phase, tag) {
        case (.readingValue, .argValueEnd):
            closeValue()
            phase = .betweenPairs
            return ""
        case (.readingKey, .argKeyEnd):
            key = PythonText.strip(String(decoding: keyBytes, as: UTF8.self))
            keyBytes.removeAll(keepingCapacity: true)
            phase = .afterKey
            return ""
        case (.afterKey, .argValueStart):
            return openValue()
        case (.betweenPairs, .argKeyStart), (.afterKey, .argKeyStart):
            keyBytes.removeAll(keepingCapacity: true)
            phase = .readingKey
            return ""
        default:
            // A tag this phase does not recognise (the owner matches only `recognizedTags`) is text.
            return tag.bytes.withUnsafeBufferPointer { text($0) }
        }
    }

    /// Ends the call (at `</tool_call>` or the end of the output); returns the last JSON piece.
    /// A value still open (the output ended inside it) is kept as it stands: a string value's characters have
    /// already been streamed and cannot be taken back, so the batch result keeps them too and the JSON is
    /// always complete. A partial closing tag at the very end never reaches the value (the owner drops it).
    mutating func finish() -> String {
        if phase == .readingValue { closeValue() }
        phase = .betweenPairs
        let piece = pairCount == 0 ? "{}" : closing + "}"
        closing = ""
        json += piece
        return piece
    }

    private mutating func openValue() -> String {
        var piece = pairCount == 0 ? "{" : closing + ", "
        closing = ""
        JSONWriter.writeString(key, ensureASCII: false, into: &piece)
        piece += ": "
        valueStreams = function.streamsValue(of: key)
        if valueStreams { piece += "\"" }
        valueBytes.removeAll(keepingCapacity: true)
        phase = .readingValue
        json += piece
        return piece
    }

    private mutating func closeValue() {
        pairCount += 1
        if valueStreams {
            closing = "\""
        } else {
            let value = function.value(of: key, text: String(decoding: valueBytes, as: UTF8.self))
            closing = value.pythonJSON
        }
    }
}

/// JSON string escaping on UTF-8 bytes, as Python's `json.dumps(ensure_ascii=False)` writes it: `"`, `\\` and
/// control characters are escaped, everything else is copied.
enum JSONStringEscaping {
    static func escaped(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var extra = 0
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: extra += 1
            case 0..<0x20: extra += 5
            default: break
            }
        }
        if extra == 0 { return String(decoding: bytes, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: bytes.count + extra) { out in
            let hex: StaticString = "0123456789abcdef"
            var n = 0
            func put(_ b: UInt8) {
                out[n] = b
                n += 1
            }
            for b in bytes {
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): put(UInt8(ascii: "\\")); put(b)
                case 0x08: put(UInt8(ascii: "\\")); put(UInt8(ascii: "b"))
                case 0x09: put(UInt8(ascii: "\\")); put(UInt8(ascii: "t"))
                case 0x0A: put(UInt8(ascii: "\\")); put(UInt8(ascii: "n"))
                case 0x0C: put(UInt8(ascii: "\\")); put(UInt8(ascii: "f"))
                case 0x0D: put(UInt8(ascii: "\\")); put(UInt8(ascii: "r"))
                case 0..<0x20:
                    for c in [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")] { put(c) }
                    put(hex.utf8Start[Int(b >> 4)])
                    put(hex.utf8Start[Int(b & 0xF)])
                default: put(b)
                }
            }
            return n
        }
    }
}
