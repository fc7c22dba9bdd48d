import GLMTokenizer
import GLMSupport
import Testing

let fixturesDirectory: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return parts.joined(separator: "/") + "/Fixtures/tokenizers"
}()

struct VocabularyCaseError: Error, CustomStringConvertible {
    var description: String
}

/// llama.cpp's test texts (`*.inp`: each text followed by a line `__ggml_vocab_test__`) and, for each, one line
/// of the ids HF tokenizers gives it without special tokens (`*.out`, space separated) — the format
/// llama.cpp's `tests/test-tokenizer-0.cpp` reads. Strict: a count mismatch or a bad id fails the test.
func vocabularyCases(_ name: String) throws -> [(String, [Int32])] {
    let input = try FileSystem.readText(fixturesDirectory + "/\(name).inp")
    let output = try FileSystem.readText(fixturesDirectory + "/\(name).out")
    var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
    guard texts.last == "" else { throw VocabularyCaseError(description: "\(name).inp: no separator after the last text") }
    texts.removeLast()
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard lines.last == "" else { throw VocabularyCaseError(description: "\(name).out: no final newline") }
    lines.removeLast()
    guard lines.count == texts.count else {
        throw VocabularyCaseError(description: "\(name): \(texts.count) texts but \(lines.count) lines of ids")
    }
    var cases: [(String, [Int32])] = []
    for (text, line) in zip(texts, lines) {
        var ids: [Int32] = []
        for field in line.split(separator: " ") {
            guard let id = Int32(field) else { throw VocabularyCaseError(description: "\(name).out: bad id '\(field)'") }
            ids.append(id)
        }
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

/// One vocabulary per `tokenizer.ggml.pre` family in llama.cpp's test set (tools/copy_llama_vocab_fixtures.py).
let byteLevelVocabularies = [
    "gpt-2", "qwen2", "qwen35", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon", "mpt", "starcoder",
    "refact", "command-r",
]

@Test(arguments: byteLevelVocabularies)
func realVocabularyMatchesHF(family: String) throws {
    let name = "ggml-vocab-\(family).gguf"
    let tokenizer = try Tokenizer.load(path: fixturesDirectory + "/" + name)
    let cases = try vocabularyCases(name)
    #expect(cases.count >= 46)
    var mismatches = 0
    for (text, expected) in cases {
        let ids = try tokenizer.encode(text, addSpecialTokens: false)
        if ids != expected { mismatches += 1 }
        #expect(ids == expected, "\(family): \(text.debugDescription)")
        // Byte-level BPE loses nothing: HF's ids decode back to the very bytes of the text.
        #expect(Array(try tokenizer.decode(expected).utf8) == Array(text.utf8), "\(family): decode \(text.debugDescription)")
    }
    #expect(mismatches == 0, "\(family): \(mismatches) of \(cases.count) texts differ")
}
