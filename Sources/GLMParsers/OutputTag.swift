import Glibc

/// The tags of GLM-4.7's output format. All are ASCII, so cutting the UTF-8 text at a tag never splits a character.
enum OutputTag: CaseIterable {
    case thinkStart, thinkEnd, toolCallStart, toolCallEnd, argKeyStart, argKeyEnd, argValueStart, argValueEnd

    var text: String {
        switch self {
        case .thinkStart: "<think>"
        case .thinkEnd: "</think>"
        case .toolCallStart: "<tool_call>"
        case .toolCallEnd: "</tool_call>"
        case .argKeyStart: "<arg_key>"
        case .argKeyEnd: "</arg_key>"
        case .argValueStart: "<arg_value>"
        case .argValueEnd: "</arg_value>"
        }
    }

    var bytes: [UInt8] { Array(text.utf8) }
}

/// Splits UTF-8 text into plain text and tags, across chunks: a chunk's tail that could still become a tag
/// is held back until the next chunk (or the end) decides it. Nothing else is ever held.
struct TagLexer {
    enum Token {
        case text(Range<Int>)
        case tag(OutputTag)
    }

    private let tags: [(tag: OutputTag, bytes: [UInt8])]
    private(set) var held: [UInt8] = []

    /// `recognizesThinkTags`: false when thinking is off, where vLLM has no `<think>`/`</think>` terminals.
    init(recognizesThinkTags: Bool) {
        tags = OutputTag.allCases
            .filter { recognizesThinkTags || ($0 != .thinkStart && $0 != .thinkEnd) }
            .map { ($0, $0.bytes) }
    }

    /// Moves the bytes held back by the last call (they go in front of the next chunk) to the end of `buffer`.
    mutating func moveHeld(to buffer: inout [UInt8]) {
        buffer.append(contentsOf: held)
        held.removeAll(keepingCapacity: true)
    }

    /// Lexes `bytes` (the held bytes already in front) into `tokens`, whose text ranges index `bytes`.
    /// With `isLast`, nothing is held back.
    mutating func lex(_ bytes: UnsafeBufferPointer<UInt8>, isLast: Bool, into tokens: inout [Token]) {
        var textStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            guard let lt = firstOpenBracket(bytes, from: i) else { break }
            switch match(bytes, at: lt) {
            case .tag(let tag, let length):
                if textStart < lt { tokens.append(.text(textStart..<lt)) }
                tokens.append(.tag(tag))
                i = lt + length
                textStart = i
            case .prefix where !isLast:
                if textStart < lt { tokens.append(.text(textStart..<lt)) }
                held.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lt..<n]))
                textStart = n
                i = n
            case .prefix, .none:
                i = lt + 1
            }
        }
        if textStart < n { tokens.append(.text(textStart..<n)) }
    }

    private enum Match {
        case tag(OutputTag, Int)
        case prefix
        case none
    }

    private func firstOpenBracket(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = bytes.baseAddress, start < bytes.count,
              let hit = memchr(base + start, Int32(UInt8(ascii: "<")), bytes.count - start) else { return nil }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }

    /// Whether the bytes at `start` (a `<`) are a whole tag, the start of one cut off by the end of the buffer,
    /// or neither. No tag is a prefix of another, so the first hit decides.
    private func match(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Match {
        let available = bytes.count - start
        var sawPrefix = false
        for (tag, tagBytes) in tags {
            let length = tagBytes.count
            let compared = min(length, available)
            var equal = true
            for j in 1..<compared where bytes[start + j] != tagBytes[j] {
                equal = false
                break
            }
            if !equal { continue }
            if compared == length { return .tag(tag, length) }
            sawPrefix = true
        }
        return sawPrefix ? .prefix : .none
    }
}
