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

/// The tags one parser state recognises, with their bytes ready for matching. Every other tag is text there:
/// a state recognises only the tags that can end or change it, so a value that quotes `</tool_call>` keeps it.
struct TagSet {
    let tags: [(tag: OutputTag, bytes: [UInt8])]

    init(_ tags: [OutputTag]) {
        self.tags = tags.map { ($0, $0.bytes) }
    }

    enum Match {
        case tag(OutputTag, length: Int)
        /// The bytes from the `<` to the end of the buffer are the start of a tag of this set, cut off.
        case prefix
        case none
    }

    /// Whether the bytes at `start` (a `<`) are a whole tag of this set, the start of one cut off by the end of
    /// the buffer, or neither. No tag is a prefix of another, so the first hit decides.
    func match(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Match {
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
            if compared == length { return .tag(tag, length: length) }
            sawPrefix = true
        }
        return sawPrefix ? .prefix : .none
    }

    /// The index of the first `<` at or after `start`, if any.
    static func firstOpenBracket(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = bytes.baseAddress, start < bytes.count,
              let hit = memchr(base + start, Int32(UInt8(ascii: "<")), bytes.count - start) else { return nil }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }
}
