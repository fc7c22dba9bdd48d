import GLMTokenizer
import GLMSupport
import Testing

let fixturesDirectory: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return parts.joined(separator: "/") + "/Fixtures/tokenizers"
}()

/// llama.cpp's test texts (`*.inp`, separated by `__ggml_vocab_test__` lines) and HF's ids for them (`*.out`).
func vocabularyCases(_ name: String) throws -> [(String, [Int32])] {
    let input = try FileSystem.readText(fixturesDirectory + "/\(name).inp")
    let output = try FileSystem.readText(fixturesDirectory + "/\(name).out")
    var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
    if texts.last?.isEmpty == true { texts.removeLast() }
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var cases: [(String, [Int32])] = []
    for (i, text) in texts.enumerated() {
        let ids = lines[i].split(separator: " ").compactMap { Int32($0) }
        cases.append((text, ids))
    }
    return cases
}

extension String {
    func components(separatedBy separator: String) -> [String] {
        var result: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            result.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        result.append(String(rest))
        return result
    }
}

@Test(arguments: ["ggml-vocab-qwen2.gguf", "ggml-vocab-gpt-2.gguf"])
func realVocabularyMatchesHF(name: String) throws {
    let tokenizer = try Tokenizer.load(path: fixturesDirectory + "/" + name)
    let cases = try vocabularyCases(name)
    #expect(cases.count > 30)
    for (text, expected) in cases {
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        #expect(ids == expected, "\(name): \(text.debugDescription)")
        #expect(try tokenizer.decode(ids) == text)
    }
}
