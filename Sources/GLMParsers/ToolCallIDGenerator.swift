/// Tool-call ids: `call_` followed by 24 lowercase hex digits from a SplitMix64 sequence.
///
/// vLLM draws `chatcmpl-tool-<random hex>` per call. Ids only have to be unique within a conversation, so
/// each parser draws a random seed unless the caller fixes one (`OutputParserOptions.toolCallIDSeed`), which
/// makes the ids reproducible for tests and replays.
struct ToolCallIDGenerator {
    private var state: UInt64

    init(seed: UInt64?) {
        state = seed ?? UInt64.random(in: UInt64.min...UInt64.max)
    }

    mutating func next() -> String {
        let high = nextWord()
        let low = nextWord() >> 32
        return "call_" + hex(high, digits: 16) + hex(low, digits: 8)
    }

    private mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
