import GLMSupport
import GLMJSON

/// The one parser behind both `parseOutput` (all text, then `finish`) and `StreamingOutputParser` (chunks, then
/// `finish`). Every rule is decided on text already seen and none depends on where chunks were cut, so the
/// streamed events always add up to the batch result.
///
/// Regions and tags (vLLM 0.33 `glm47_moe_config`; a tag with no rule here is text of the current region):
///
///     reasoning  <think> ignored · </think> → content · <tool_call> → tool name
///     content    <think> → reasoning · </think> ignored · <tool_call> → tool name
///     tool name  <arg_key> → arguments · </tool_call> → content
///     arguments  </tool_call> → content; the argument tags go to `ToolCallArguments`
struct OutputStateMachine {
    private enum Region {
        case reasoning, content, toolName, toolArguments
    }

    /// A call whose name has been accepted.
    private struct OpenCall {
        var index: Int
        var id: String
        var name: String
        var arguments: ToolCallArguments
    }

    private let catalog: ToolCatalog
    private let keepUndeclaredTools: Bool
    private let parseToolCalls: Bool
    private var lexer: TagLexer
    private var tokens: [TagLexer.Token] = []
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
    private var contentHasNonWhitespace = false
    /// Whitespace-only content so far: vLLM drops it once a call starts, and sends it at the end otherwise.
    private var heldContentWhitespace: [UInt8] = []
    private var sawToolCall = false
    private var nameBytes: [UInt8] = []
    private var inToolCall = false
    private var openCall: OpenCall?
    private var toolCalls: [ParsedToolCall] = []

    init(options: OutputParserOptions, recordsEvents: Bool) throws(GLMError) {
        catalog = try ToolCatalog(tools: options.tools)
        keepUndeclaredTools = options.keepUndeclaredTools
        parseToolCalls = options.parseToolCalls
        lexer = TagLexer(recognizesThinkTags: options.thinking)
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
        var finalContent = content
        if !toolCalls.isEmpty { finalContent = PythonText.strip(finalContent) }
        let output = ParsedOutput(reasoning: reasoning.isEmpty ? nil : reasoning,
                                  content: finalContent.isEmpty ? nil : finalContent,
                                  toolCalls: toolCalls)
        return (takeEvents(), output)
    }

    private mutating func takeEvents() -> [ParserEvent] {
        defer { events.removeAll() }
        return events
    }

    private mutating func consume(_ chunk: String, isLast: Bool) {
        var chunk = chunk
        chunk.withUTF8 { bytes in
            if lexer.held.isEmpty {
                consume(bytes: bytes, isLast: isLast)
            } else {
                joined.removeAll(keepingCapacity: true)
                lexer.moveHeld(to: &joined)
                joined.append(contentsOf: bytes)
                let copy = joined  // shares the storage; reading `joined` itself would overlap the mutation of self
                copy.withUnsafeBufferPointer { consume(bytes: $0, isLast: isLast) }
            }
        }
    }

    private mutating func consume(bytes: UnsafeBufferPointer<UInt8>, isLast: Bool) {
        tokens.removeAll(keepingCapacity: true)
        lexer.lex(bytes, isLast: isLast, into: &tokens)
        for token in tokens {
            switch token {
            case .text(let range): handleText(UnsafeBufferPointer(rebasing: bytes[range]))
            case .tag(let tag): handleTag(tag)
            }
        }
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
            endToolCall()
        case (.toolArguments, .argKeyStart), (.toolArguments, .argKeyEnd),
             (.toolArguments, .argValueStart), (.toolArguments, .argValueEnd):
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
            guard let index = openCall?.index, let piece = openCall?.arguments.text(bytes), !piece.isEmpty else { return }
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
        if parseToolCalls {
            sawToolCall = true
            heldContentWhitespace.removeAll()
        }
    }

    /// The name is the stripped text before the first `<arg_key>` or `</tool_call>`. A call is kept only if
    /// calls are wanted, the name is not empty, and the request declares it (or undeclared tools are kept).
    private mutating func acceptToolName() {
        let name = PythonText.strip(String(decoding: nameBytes, as: UTF8.self))
        guard parseToolCalls, !name.isEmpty else { return }
        let function: ToolCatalog.Function
        if let declared = catalog.function(named: name) {
            function = declared
        } else if keepUndeclaredTools {
            function = ToolCatalog.undeclared
        } else {
            return
        }
        let call = OpenCall(index: toolCalls.count, id: ids.next(), name: name,
                            arguments: ToolCallArguments(function: function))
        openCall = call
        record(.toolCallStart(index: call.index, id: call.id, name: name))
    }

    private mutating func passToArguments(_ tag: OutputTag) {
        guard let index = openCall?.index, let piece = openCall?.arguments.tag(tag), !piece.isEmpty else { return }
        record(.toolCallArguments(index: index, delta: piece))
    }

    private mutating func endToolCall() {
        if region == .toolName { acceptToolName() }
        region = .content
        inToolCall = false
        guard var call = openCall else { return }
        openCall = nil
        let piece = call.arguments.finish()
        record(.toolCallArguments(index: call.index, delta: piece))
        toolCalls.append(ParsedToolCall(id: call.id, name: call.name, arguments: call.arguments.json))
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
