import GLMSupport
import GLMJSON

/// The one parser behind both `parseOutput` (all text, then `finish`) and `StreamingOutputParser` (chunks, then
/// `finish`). Every rule is decided on text already seen and none depends on where chunks were cut, so the
/// streamed events always add up to the batch result.
///
/// Regions and tags (vLLM 0.33 `glm47_moe_config`). Each region recognises only the tags listed for it; any
/// other tag is text of the region, so a value or reasoning that quotes the format keeps it:
///
///     reasoning  <think> ignored · </think> → content · <tool_call> → tool name
///     content    <think> → reasoning · </think> ignored · <tool_call> → tool name (none with verbatimContent)
///     tool name  <arg_key> → arguments · </tool_call> → content
///     arguments  what `ToolCallArguments.recognizedTags` lists for its phase: between pairs `<arg_key>` and
///                `</tool_call>` (→ content); inside a key only `</arg_key>`; inside a value only `</arg_value>`
///
/// Chunk tails that could still become a recognised tag are held back until the next chunk decides them. At
/// the end of the output such a tail is text in reasoning and content, and is dropped inside a call: it is
/// markup the model was writing when it was cut off (`<arg_value>hi</arg_va` gives `"hi"`), never data.
struct OutputStateMachine {
    private enum Region {
        case reasoning, content, toolName, toolArguments
    }

    /// A call whose name has been accepted and that will be returned.
    private struct OpenCall {
        var index: Int
        var id: String
        var name: String
    }

    private let catalog: ToolCatalog
    private let keepUndeclaredTools: Bool
    private let parseToolCalls: Bool
    private let reasoningTags: TagSet
    private let contentTags: TagSet
    private static let toolNameTags = TagSet([.argKeyStart, .toolCallEnd])
    /// A chunk's tail that could still be a recognised tag; it goes in front of the next chunk.
    private var held: [UInt8] = []
    private var joined: [UInt8] = []
    private var region: Region
    private var ids: ToolCallIDGenerator
    private let recordsEvents: Bool
    private var events: [ParserEvent] = []
    private var isFinished = false

    private var reasoning = ""
    /// Reasoning's trailing whitespace, sent only if more reasoning follows (vLLM right-strips reasoning).
    private var heldReasoningWhitespace: [UInt8] = []
    private var content = ""
    /// `content`'s UTF-8 length when the first returned call started: what vLLM's batch message keeps.
    private var contentBytesBeforeFirstCall: Int?
    private var contentHasNonWhitespace = false
    /// Whitespace-only content so far: vLLM drops it once a call starts, and sends it at the end otherwise.
    private var heldContentWhitespace: [UInt8] = []
    private var sawToolCall = false
    private var nameBytes: [UInt8] = []
    private var inToolCall = false
    private var openCall: OpenCall?
    /// The pairs of the call being read, returned or not: dropped calls need them too, to know where they end.
    private var arguments = ToolCallArguments(function: ToolCatalog.undeclared)
    private var toolCalls: [ParsedToolCall] = []

    init(options: OutputParserOptions, recordsEvents: Bool) throws(GLMError) {
        catalog = try ToolCatalog(tools: options.tools)
        keepUndeclaredTools = options.keepUndeclaredTools
        parseToolCalls = options.parseToolCalls
        // With thinking off vLLM has no `<think>`/`</think>` terminals: they are content text.
        reasoningTags = TagSet([.thinkStart, .thinkEnd, .toolCallStart])
        contentTags = options.verbatimContent ? TagSet([])
            : TagSet(options.thinking ? [.thinkStart, .thinkEnd, .toolCallStart] : [.toolCallStart])
        region = options.thinking ? .reasoning : .content
        ids = ToolCallIDGenerator(seed: options.toolCallIDSeed)
        self.recordsEvents = recordsEvents
    }

    mutating func feed(_ chunk: String) -> [ParserEvent] {
        guard !isFinished else { return [] }
        consume(chunk, isLast: false)
        return takeEvents()
    }

    mutating func finish() -> (events: [ParserEvent], output: ParsedOutput) {
        if !isFinished {
            isFinished = true
            consume("", isLast: true)
            if inToolCall { endToolCall() }
            if !heldContentWhitespace.isEmpty && !sawToolCall {
                let text = String(decoding: heldContentWhitespace, as: UTF8.self)
                content += text
                record(.content(text))
            }
            heldContentWhitespace.removeAll()
            heldReasoningWhitespace.removeAll()
        }
        let finalContent = Self.messageContent(content, bytesBeforeFirstCall: contentBytesBeforeFirstCall)
        let output = ParsedOutput(reasoning: reasoning.isEmpty ? nil : reasoning,
                                  content: finalContent.isEmpty ? nil : finalContent,
                                  toolCalls: toolCalls)
        return (takeEvents(), output)
    }

    /// The message's content. Without calls it is all the content. With calls, vLLM 0.33's batch message is the
    /// stripped text before the first call and its stream is all the content, unstripped; the two differ only
    /// when text follows the first call, which the batch loses. So: the batch answer while nothing but
    /// whitespace follows the first call, the streamed answer (to the byte) once text does. Never a third one.
    static func messageContent(_ content: String, bytesBeforeFirstCall: Int?) -> String {
        guard let split = bytesBeforeFirstCall else { return content }
        let utf8 = content.utf8
        let boundary = utf8.index(utf8.startIndex, offsetBy: min(split, utf8.count))
        let after = String(decoding: utf8[boundary...], as: UTF8.self)
        if PythonText.strip(after).isEmpty {
            return PythonText.strip(String(decoding: utf8[..<boundary], as: UTF8.self))
        }
        return content
    }

    private mutating func takeEvents() -> [ParserEvent] {
        defer { events.removeAll() }
        return events
    }

    private mutating func consume(_ chunk: String, isLast: Bool) {
        var chunk = chunk
        chunk.withUTF8 { bytes in
            if held.isEmpty {
                consume(bytes: bytes, isLast: isLast)
            } else {
                joined.removeAll(keepingCapacity: true)
                joined.append(contentsOf: held)
                held.removeAll(keepingCapacity: true)
                joined.append(contentsOf: bytes)
                let copy = joined  // shares the storage; reading `joined` itself would overlap the mutation of self
                copy.withUnsafeBufferPointer { consume(bytes: $0, isLast: isLast) }
            }
        }
    }

    /// The tags the current state recognises (see the table at the top).
    private var recognizedTags: TagSet {
        switch region {
        case .reasoning: reasoningTags
        case .content: contentTags
        case .toolName: Self.toolNameTags
        case .toolArguments: arguments.recognizedTags
        }
    }

    /// Splits `bytes` (held bytes already in front) into text and tags, matching each `<` against the tags of
    /// the state reached so far. With `isLast` nothing is held back.
    private mutating func consume(bytes: UnsafeBufferPointer<UInt8>, isLast: Bool) {
        let n = bytes.count
        var textStart = 0
        var i = 0
        while let lt = TagSet.firstOpenBracket(bytes, from: i) {
            switch recognizedTags.match(bytes, at: lt) {
            case .tag(let tag, let length):
                if textStart < lt { handleText(UnsafeBufferPointer(rebasing: bytes[textStart..<lt])) }
                handleTag(tag)
                i = lt + length
                textStart = i
            case .prefix:
                if textStart < lt { handleText(UnsafeBufferPointer(rebasing: bytes[textStart..<lt])) }
                if !isLast {
                    held.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lt..<n]))
                } else if region == .reasoning || region == .content {
                    handleText(UnsafeBufferPointer(rebasing: bytes[lt..<n]))
                }
                // Else the output ended inside a call in the middle of a tag: the partial tag is dropped.
                return
            case .none:
                i = lt + 1
            }
        }
        if textStart < n { handleText(UnsafeBufferPointer(rebasing: bytes[textStart..<n])) }
    }

    private mutating func handleTag(_ tag: OutputTag) {
        switch (region, tag) {
        case (.reasoning, .thinkStart), (.content, .thinkEnd):
            return
        case (.reasoning, .thinkEnd):
            region = .content
        case (.content, .thinkStart):
            region = .reasoning
        case (.reasoning, .toolCallStart), (.content, .toolCallStart):
            beginToolCall()
        case (.toolName, .argKeyStart):
            acceptToolName()
            region = .toolArguments
            passToArguments(tag)
        case (.toolName, .toolCallEnd), (.toolArguments, .toolCallEnd):
            // Matched only where `ToolCallArguments` lists it: between pairs, never inside a key or a value.
            endToolCall()
        case (.toolArguments, _):
            passToArguments(tag)
        default:
            tag.bytes.withUnsafeBufferPointer { handleText($0) }
        }
    }

    private mutating func handleText(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch region {
        case .reasoning: appendReasoning(bytes)
        case .content: appendContent(bytes)
        case .toolName: nameBytes.append(contentsOf: bytes)
        case .toolArguments:
            let piece = arguments.text(bytes)
            guard let index = openCall?.index, !piece.isEmpty else { return }
            record(.toolCallArguments(index: index, delta: piece))
        }
    }

    private mutating func appendReasoning(_ bytes: UnsafeBufferPointer<UInt8>) {
        let whitespaceStart = PythonText.trailingWhitespaceStart(bytes)
        if whitespaceStart == 0 {
            heldReasoningWhitespace.append(contentsOf: bytes)
            return
        }
        var text = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<whitespaceStart]), as: UTF8.self)
        if !heldReasoningWhitespace.isEmpty {
            text = String(decoding: heldReasoningWhitespace, as: UTF8.self) + text
            heldReasoningWhitespace.removeAll(keepingCapacity: true)
        }
        heldReasoningWhitespace.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[whitespaceStart...]))
        reasoning += text
        record(.reasoning(text))
    }

    private mutating func appendContent(_ bytes: UnsafeBufferPointer<UInt8>) {
        if !contentHasNonWhitespace {
            if PythonText.isAllWhitespace(bytes) {
                heldContentWhitespace.append(contentsOf: bytes)
                return
            }
            contentHasNonWhitespace = true
        }
        var text = ""
        if !heldContentWhitespace.isEmpty {
            text = String(decoding: heldContentWhitespace, as: UTF8.self)
            heldContentWhitespace.removeAll()
        }
        text += String(decoding: bytes, as: UTF8.self)
        content += text
        record(.content(text))
    }

    private mutating func beginToolCall() {
        region = .toolName
        inToolCall = true
        nameBytes.removeAll(keepingCapacity: true)
        openCall = nil
        arguments = ToolCallArguments(function: ToolCatalog.undeclared)
        if parseToolCalls {
            sawToolCall = true
            heldContentWhitespace.removeAll()
        }
    }

    /// The name is the stripped text before the first `<arg_key>` or `</tool_call>`. A call is kept only if
    /// calls are wanted, the name is not empty, and the request declares it (or undeclared tools are kept).
    private mutating func acceptToolName() {
        let name = PythonText.strip(String(decoding: nameBytes, as: UTF8.self))
        arguments = ToolCallArguments(function: ToolCatalog.undeclared)
        guard parseToolCalls, !name.isEmpty else { return }
        let function: ToolCatalog.Function
        if let declared = catalog.function(named: name) {
            function = declared
        } else if keepUndeclaredTools {
            function = ToolCatalog.undeclared
        } else {
            return
        }
        let call = OpenCall(index: toolCalls.count, id: ids.next(), name: name)
        openCall = call
        arguments = ToolCallArguments(function: function)
        if contentBytesBeforeFirstCall == nil { contentBytesBeforeFirstCall = content.utf8.count }
        record(.toolCallStart(index: call.index, id: call.id, name: name))
    }

    private mutating func passToArguments(_ tag: OutputTag) {
        let piece = arguments.tag(tag)
        guard let index = openCall?.index, !piece.isEmpty else { return }
        record(.toolCallArguments(index: index, delta: piece))
    }

    private mutating func endToolCall() {
        if region == .toolName { acceptToolName() }
        region = .content
        inToolCall = false
        let piece = arguments.finish()
        guard let call = openCall else { return }
        openCall = nil
        record(.toolCallArguments(index: call.index, delta: piece))
        toolCalls.append(ParsedToolCall(id: call.id, name: call.name, arguments: arguments.json))
    }

    /// Queues an event, merged into the previous one when both are text of the same kind.
    private mutating func record(_ event: ParserEvent) {
        guard recordsEvents else { return }
        if let last = events.last {
            switch (last, event) {
            case (.reasoning(let a), .reasoning(let b)):
                events[events.count - 1] = .reasoning(a + b)
                return
            case (.content(let a), .content(let b)):
                events[events.count - 1] = .content(a + b)
                return
            case (.toolCallArguments(let i, let a), .toolCallArguments(let j, let b)) where i == j:
                events[events.count - 1] = .toolCallArguments(index: i, delta: a + b)
                return
            default:
                break
            }
        }
        events.append(event)
    }
}
