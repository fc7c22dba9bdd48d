import GLMJSON
import GLMSupport
import GLMTokenizer
import Testing

/// Reads a JSON-lines fixture.
func jsonLines(_ name: String) throws -> [JSONValue] {
    let text = try FileSystem.readText(fixturesDirectory + "/" + name)
    return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
}

func ids(_ value: JSONValue?) -> [Int32] {
    (value?.arrayValue ?? []).compactMap { $0.intValue.map { Int32($0) } }
}

let tokenizerFiles = [
    "glm-tiny": fixturesDirectory + "/glm-tiny/tokenizer.json",
    "merges-dropped": fixturesDirectory + "/variants/merges-dropped.json",
    "gpt2-style": fixturesDirectory + "/variants/gpt2-style.json",
    "behaviors": fixturesDirectory + "/variants/behaviors.json",
]

@Test(arguments: ["glm-tiny", "merges-dropped", "gpt2-style", "behaviors"])
func encodingMatchesHFTokenizers(name: String) throws {
    let tokenizer = try Tokenizer.load(path: tokenizerFiles[name] ?? "")
    var checked = 0, mismatches = 0
    for c in try jsonLines("encode_cases.jsonl") where c["tokenizer"]?.stringValue == name {
        let text = c["text"]?.stringValue ?? ""
        let expected = ids(c["ids"])
        let expectedWithSpecial = c["ids_with_special"] == nil ? expected : ids(c["ids_with_special"])
        let got = try tokenizer.encode(text, addSpecialTokens: false)
        let gotWithSpecial = try tokenizer.encode(text, addSpecialTokens: true)
        if got != expected || gotWithSpecial != expectedWithSpecial {
            mismatches += 1
            if mismatches <= 5 { Issue.record("\(name): \(text.debugDescription)\n got \(got)\n want \(expected)") }
        }
        checked += 1
    }
    #expect(checked >= 300)
    #expect(mismatches == 0, "\(mismatches) of \(checked) strings differ from HF tokenizers")
}

@Test func decodingMatchesHFTokenizers() throws {
    let tokenizer = try Tokenizer.load(path: fixturesDirectory + "/glm-tiny")
    var checked = 0
    for c in try jsonLines("decode_cases.jsonl") {
        let input = ids(c["ids"])
        #expect(try tokenizer.decode(input) == c["text"]?.stringValue, "\(input)")
        #expect(try tokenizer.decode(input, skipSpecialTokens: true) == c["text_skip_special"]?.stringValue, "\(input)")
        // Streaming: the pieces concatenate to the whole decode, and none ends in a broken character.
        for skip in [false, true] {
            var stream = StreamingDecoder(skipSpecialTokens: skip)
            var text = ""
            for id in input { text += try stream.append(id, from: tokenizer) }
            text += stream.finish()
            #expect(text == (skip ? c["text_skip_special"] : c["text"])?.stringValue, "\(input)")
        }
        checked += 1
    }
    #expect(checked == 300)
}

@Test func regexSplitsMatchOniguruma() throws {
    let patterns: [String: String] = [
        "glm4": #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "qwen2": #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "gpt2": #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#,
        "o200k": #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "deepseek_v3": ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
        "bailing_possessive": #"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"#,
        "features": #"\s+$|^\w+|(?>\d+)\.|[a-f]+?x|(?i:[A-Z]{2,3})\b|\P{L}{2}|[\u0400-\u04FF]+|😀|."#,
    ]
    var compiled: [String: PatternRegex] = [:]
    for (name, p) in patterns { compiled[name] = try PatternRegex(p) }
    var checked = 0
    var failures: [String: Int] = [:]
    for c in try jsonLines("regex_cases.jsonl") {
        let text = c["text"]?.stringValue ?? ""
        for (name, lengths) in c["splits"]?.objectValue ?? JSONObject() {
            guard let regex = compiled[name] else { continue }
            let expected = (lengths.arrayValue ?? []).compactMap(\.intValue)
            let got = try regex.isolatedPieces(text).map { $0.unicodeScalars.count }
            if got != expected {
                failures[name, default: 0] += 1
                if failures[name] == 1 { Issue.record("\(name): \(text.debugDescription)\n got \((try? regex.isolatedPieces(text)) ?? [])") }
            }
            checked += 1
        }
    }
    #expect(checked == 1500 * 7)
    #expect(failures.isEmpty, "\(failures)")
}
