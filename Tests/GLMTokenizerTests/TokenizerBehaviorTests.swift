import Glibc
import GLMJSON
import GLMSupport
import GLMTokenizer
import Testing

private let glmTiny = fixturesDirectory + "/glm-tiny"

/// GLM-4.7's added tokens in id order, read from the reference table the fixture was built from.
private func glmAddedTokens() throws -> [(String, Bool)] {
    let config = try JSONValue.parse(FileSystem.readText(glmTiny + "/tokenizer_config.json"))
    let decoder = try #require(config["added_tokens_decoder"]?.objectValue)
    return decoder.pairs.compactMap { pair in
        guard let content = pair.value["content"]?.stringValue, let special = pair.value["special"]?.boolValue else { return nil }
        return (content, special)
    }
}

@Test func glmAddedTokensAreSingleTokensWithFileIDs() throws {
    let tokenizer = try Tokenizer.load(path: glmTiny)
    let added = try glmAddedTokens()
    #expect(added.count == 36)
    let firstID = try #require(tokenizer.tokenID(for: "<|endoftext|>"))
    #expect(tokenizer.vocabSize == Int(firstID) + added.count)
    for (offset, (content, special)) in added.enumerated() {
        let id = Int32(Int(firstID) + offset)
        #expect(tokenizer.tokenID(for: content) == id, "\(content)")
        #expect(tokenizer.isSpecial(id) == special, "\(content)")
        #expect(try tokenizer.encode("x\(content)y", addSpecialTokens: false).contains(id), "\(content)")
        #expect(try tokenizer.tokenString(id) == content)
    }
    let think = try #require(tokenizer.tokenID(for: "<think>"))
    let user = try #require(tokenizer.tokenID(for: "<|user|>"))
    let ids = try tokenizer.encode("<|user|>hi<think>", addSpecialTokens: true)
    #expect(ids.first == user && ids.last == think)
    // Non-special tokens survive skip_special_tokens; special ones do not.
    #expect(try tokenizer.decode(ids, skipSpecialTokens: true) == "hi<think>")
    #expect(try tokenizer.decode(ids) == "<|user|>hi<think>")
    #expect(tokenizer.eosTokenID == tokenizer.tokenID(for: "<|endoftext|>"))
    #expect(tokenizer.padTokenID == tokenizer.eosTokenID)
    #expect(tokenizer.tokenID(for: "Ċ") == (try tokenizer.encode("\n", addSpecialTokens: false)).first)
    #expect(tokenizer.tokenID(for: "no such token") == nil)
}

@Test func decodeRejectsOutOfRangeIDs() throws {
    let tokenizer = try Tokenizer.load(path: glmTiny)
    #expect(throws: GLMError.self) { try tokenizer.decode([1, Int32(tokenizer.vocabSize)]) }
    #expect(throws: GLMError.self) { try tokenizer.decode([-1]) }
    #expect(throws: GLMError.self) { try tokenizer.tokenBytes(Int32(tokenizer.vocabSize)) }
    var stream = StreamingDecoder()
    #expect(throws: GLMError.self) { try stream.append(Int32.max, from: tokenizer) }
}

@Test func streamingDecoderWaitsForCompleteCharacters() throws {
    let tokenizer = try Tokenizer.load(path: glmTiny)
    // Byte tokens: every single byte is a token in a byte-level vocabulary.
    var ids: [Int32] = []
    for i in 0..<tokenizer.vocabSize {
        let bytes = try tokenizer.tokenBytes(Int32(i))
        if bytes.count == 1 { ids.append(Int32(i)) }
    }
    var byte = [Int32](repeating: -1, count: 256)
    for id in ids { byte[Int(try tokenizer.tokenBytes(id)[0])] = id }
    #expect(!byte.contains(-1))
    var stream = StreamingDecoder()
    // "é" = C3 A9, "😀" = F0 9F 98 80: nothing until the last byte.
    #expect(try stream.append(byte[0xC3], from: tokenizer) == "")
    #expect(stream.hasPendingBytes)
    #expect(try stream.append(byte[0xA9], from: tokenizer) == "é")
    for b in [0xF0, 0x9F, 0x98] as [Int] { #expect(try stream.append(byte[b], from: tokenizer) == "") }
    #expect(try stream.append(byte[0x80], from: tokenizer) == "😀")
    // An impossible continuation: the held lead byte becomes U+FFFD at once, then the ASCII byte.
    #expect(try stream.append(byte[0xE2], from: tokenizer) == "")
    #expect(try stream.append(byte[0x41], from: tokenizer) == "\u{FFFD}A")
    // ED A0 can never be valid (a surrogate): emitted as replacement immediately.
    #expect(try stream.append(byte[0xED], from: tokenizer) == "")
    #expect(try stream.append(byte[0xA0], from: tokenizer) == "\u{FFFD}\u{FFFD}")
    // A dangling lead byte at the end is flushed by finish().
    #expect(try stream.append(byte[0xF0], from: tokenizer) == "")
    #expect(stream.finish() == "\u{FFFD}")
    #expect(!stream.hasPendingBytes)
}

/// Writes `text` as a temporary tokenizer.json and returns the load error's message (nil if it loaded).
private func loadError(_ text: String, _ name: String) -> String? {
    let dir = "/tmp/glm-tokenizer-test-\(getpid())-\(name)"
    mkdir(dir, 0o755)
    let path = dir + "/tokenizer.json"
    if let f = fopen(path, "wb") {
        _ = text.utf8CString.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count - 1, f) }
        fclose(f)
    }
    defer { unlink(path); rmdir(dir) }
    do {
        _ = try Tokenizer.load(path: path)
        return nil
    } catch {
        return error.message
    }
}

@Test func malformedTokenizerFilesGiveClearErrors() throws {
    let ok = #"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"decoder":{"type":"ByteLevel"},"added_tokens":[]}"#
    #expect(loadError(ok, "ok") == nil)
    let cases: [(String, String, String)] = [
        ("truncated", String(ok.dropLast(20)), "invalid JSON"),
        ("merge", ok.replacingFirst("\"a b\"", with: "\"a c\""), "not in the vocabulary"),
        ("mergeform", ok.replacingFirst("\"a b\"", with: "\"a b c\""), "separated by one space"),
        ("model", ok.replacingFirst("\"BPE\"", with: "\"Unigram\""), "Unigram"),
        ("regex", ok.replacingFirst(#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#,
                                    with: #"{"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated","invert":false}"#), "missing ')'"),
        ("lookbehind", ok.replacingFirst(#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#,
                                         with: #"{"type":"Split","pattern":{"Regex":"(?<=a)b"},"behavior":"Isolated","invert":false}"#), "lookbehind"),
        ("behavior", ok.replacingFirst(#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#,
                                       with: #"{"type":"Split","pattern":{"Regex":"a"},"behavior":"Sideways","invert":false}"#), "Sideways"),
        ("id", ok.replacingFirst("\"ab\":2", with: "\"ab\":99999999999"), "token id 99999999999 is out of range"),
        ("negative", ok.replacingFirst("\"ab\":2", with: "\"ab\":-2"), "non-negative integer"),
        ("normalizer", ok.replacingFirst("\"added_tokens\":[]", with: "\"added_tokens\":[],\"normalizer\":{\"type\":\"Precompiled\"}"), "Precompiled"),
        ("added", ok.replacingFirst("\"added_tokens\":[]", with: "\"added_tokens\":[{\"id\":\"x\"}]"), "added_tokens[0]"),
        ("wordpiece", ok.replacingFirst(#""decoder":{"type":"ByteLevel"}"#, with: #""decoder":{"type":"WordPiece"}"#), "WordPiece"),
        ("novocab", #"{"model":{"type":"BPE","merges":[]}}"#, "model.vocab is missing"),
    ]
    for (name, text, needle) in cases {
        let message = loadError(text, name)
        #expect(message?.contains(needle) == true, "\(name): \(message ?? "loaded")")
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = firstRange(of: target) else { return self }
        return String(self[..<r.lowerBound]) + replacement + String(self[r.upperBound...])
    }
}

@Test func regexEngineRejectsWhatItCannotRun() {
    for pattern in ["(a", "a)", "[a", "\\p{Han}", "(?<=x)y", "\\1", "a{5,2}", "(?:)*", "[[:alpha:]]", "\\p{"] {
        #expect(throws: GLMError.self, "\(pattern)") { try PatternRegex(pattern) }
    }
    // Deep nesting is bounded, not a stack overflow.
    #expect(throws: GLMError.self) { try PatternRegex(String(repeating: "(", count: 5000) + String(repeating: ")", count: 5000)) }
}
