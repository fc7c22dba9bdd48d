@testable import GLMTokenizer
import Glibc
import GLMSupport
import Testing

// The GGUF loader's pre-tokenizer table (GGUFPreTokenizer) against llama.cpp's `src/llama-vocab.cpp`, and the
// loader's refusals. The byte-level families' ids against HF are in RealVocabularyTests.

/// The ranges of the first `[...]` class in `pattern`, as written (`a-b` or a single scalar), in order. The
/// classes checked here have no escapes inside the brackets.
private func classRanges(_ pattern: String) -> [(UInt32, UInt32)] {
    let scalars = Array(pattern.unicodeScalars.map(\.value))
    guard let open = scalars.firstIndex(of: 0x5B), let close = scalars[open...].firstIndex(of: 0x5D) else { return [] }
    let body = Array(scalars[(open + 1)..<close])
    var ranges: [(UInt32, UInt32)] = []
    var i = 0
    while i < body.count {
        if i + 2 < body.count, body[i + 1] == 0x2D {
            ranges.append((body[i], body[i + 2]))
            i += 3
        } else {
            ranges.append((body[i], body[i]))
            i += 1
        }
    }
    return ranges
}

private func expectRanges(_ pattern: String, _ expected: [(UInt32, UInt32)], _ what: String) {
    let got = classRanges(pattern)
    #expect(got.count == expected.count, "\(what): \(got.count) ranges, llama.cpp has \(expected.count)")
    func hex(_ r: (UInt32, UInt32)) -> String {
        "U+\(String(r.0, radix: 16, uppercase: true))-U+\(String(r.1, radix: 16, uppercase: true))"
    }
    for (i, (g, e)) in zip(got, expected).enumerated() where g != e {
        Issue.record("\(what): range \(i) is \(hex(g)), llama.cpp has \(hex(e))")
    }
}

/// The character classes with non-ASCII ranges, code point for code point as llama.cpp's `llama-vocab.cpp` (and
/// DeepSeek's tokenizer.json) write them. Several ends (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) have
/// singleton canonical decompositions: written as literal characters, any NFC step on the source would turn
/// U+1FD0-U+1FD3 into U+1FD0-U+0390 (out of order) or U+212A-U+212D into U+004B-U+212D (silently huge).
@Test func deepseekClassesMatchLlamaCppCodePoints() {
    let letters: [(UInt32, UInt32)] = [
        (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
        (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x376), (0x377, 0x377), (0x37B, 0x37D),
        (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5),
        (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD),
        (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15),
        (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
        (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4),
        (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
        (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124),
        (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F),
        (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2183), (0x2184, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4),
        (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF2), (0x2CF3, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F),
        (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A),
        (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2),
        (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943)
    ]
    expectRanges(GGUFPreTokenizer.deepseekLLM[1], letters, "deepseek-llm letters")
    expectRanges(GGUFPreTokenizer.deepseekLLM[2], [
        (0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)
    ], "deepseek-llm punctuation")
    let cjk: [(UInt32, UInt32)] = [
        (0x4E00, 0x9FA5), (0x800, 0x4E00), (0xAC00, 0xD7FF)
    ]
    expectRanges(GGUFPreTokenizer.deepseekLLM[4], cjk, "deepseek-llm CJK")
    expectRanges(GGUFPreTokenizer.deepseekCoder[3], cjk, "deepseek-coder CJK")
    expectRanges(GGUFPreTokenizer.deepseekV3[1], [
        (0x4E00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF)
    ], "deepseek-v3 CJK and kana")

    // The ranges whose ends an NFC step rewrites, spelled out.
    let letterRanges = classRanges(GGUFPreTokenizer.deepseekLLM[1])
    for risky: (UInt32, UInt32) in [(0x1F5F, 0x1F7D), (0x1FBE, 0x1FBE), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB),
                                    (0x2126, 0x2126), (0x212A, 0x212D)] {
        #expect(letterRanges.contains { $0 == risky }, "U+\(String(risky.0, radix: 16))-U+\(String(risky.1, radix: 16))")
    }
    // The rest of each pattern, around the class.
    #expect(GGUFPreTokenizer.deepseekLLM[1].hasPrefix(#"\s?[A-Za-z"#) && GGUFPreTokenizer.deepseekLLM[1].hasSuffix("]+"))
    #expect(GGUFPreTokenizer.deepseekLLM[2].hasPrefix(#"\s?[!-/:-~"#) && GGUFPreTokenizer.deepseekLLM[2].hasSuffix("]+"))
    #expect(GGUFPreTokenizer.deepseekLLM.count == 6 && GGUFPreTokenizer.deepseekCoder.count == 5)
}

/// The class works as llama.cpp's does on the characters a normalized source would have lost.
@Test func deepseekLetterClassKeepsDecomposableCharacters() throws {
    let regex = try PatternRegex(GGUFPreTokenizer.deepseekLLM[1])
    for scalar: UInt32 in [0x1F7D, 0x1FBE, 0x1FD3, 0x1FDB, 0x2126, 0x212A] {
        let text = "a" + String(Character(try #require(Unicode.Scalar(scalar)))) + "b"
        #expect(try regex.isolatedPieces(text).map { Array($0.unicodeScalars) } == [Array(text.unicodeScalars)],
                "U+\(String(scalar, radix: 16, uppercase: true))")
    }
    // Outside the class: MULTIPLICATION SIGN (between two ranges) and a digit.
    #expect(try regex.isolatedPieces("a\u{D7}b") == ["a", "\u{D7}", "b"])
    #expect(try regex.isolatedPieces("x1") == ["x", "1"])
}

private let sourceDirectory: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/") + "/Sources/GLMTokenizer"
}()

/// The pre-tokenizer table is pure ASCII (non-ASCII written as `\u{...}`), and no tokenizer source holds a
/// character an NFC step would rewrite.
@Test func tokenizerSourcesSurviveNormalization() throws {
    let loader = try FileSystem.readText(sourceDirectory + "/GGUFTokenizerLoader.swift")
    #expect(!loader.utf8.isEmpty && loader.utf8.allSatisfy { $0 < 0x80 }, "GGUFTokenizerLoader.swift has non-ASCII bytes")
    let files = try FileSystem.listDirectory(sourceDirectory).filter { $0.hasSuffix(".swift") }
    #expect(files.count > 10)
    for file in files {
        let text = try FileSystem.readText(sourceDirectory + "/" + file)
        for scalar in text.unicodeScalars where scalar.value >= 0x80 {
            let nfc = UnicodeNormalization.nfc(String(scalar))
            #expect(Array(nfc.unicodeScalars) == [scalar], "\(file): U+\(String(scalar.value, radix: 16, uppercase: true)) changes under NFC")
        }
    }
}

/// Every `tokenizer.ggml.pre` the loader accepts has patterns that compile.
@Test func everyAcceptedPreTokenizerCompiles() throws {
    let names = GGUFPreTokenizer.supportedNames
    #expect(Set(names).count == names.count, "a name is listed twice")
    for family in ["gpt-2", "qwen2", "qwen35", "llama-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon",
                   "mpt", "starcoder", "refact", "command-r", "glm4", "gpt-4o", "tekken"] {
        #expect(names.contains(family), "\(family)")
    }
    for name in names {
        let (patterns, _) = try #require(GGUFPreTokenizer.configuration(for: name))
        #expect(!patterns.isEmpty)
        for pattern in patterns {
            #expect(throws: Never.self, "\(name)") { _ = try PatternRegex(pattern) }
        }
    }
    #expect(GGUFPreTokenizer.configuration(for: "default") == nil)
}

/// Little-endian GGUF v3 with only string metadata (enough to reach the loader's checks).
private func metadataOnlyGGUF(_ pairs: [(String, String)], _ name: String) throws -> String {
    var bytes: [UInt8] = []
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    u32(0x4655_4747); u32(3); u64(0); u64(UInt64(pairs.count))
    for (key, value) in pairs { string(key); u32(8); string(value) }
    let path = "/tmp/glm-tokenizer-test-\(getpid())-\(name).gguf"
    guard let f = fopen(path, "wb") else { throw GLMError.io("cannot create \(path)") }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
    return path
}

private func loadingError(_ path: String) -> GLMError? {
    do {
        _ = try Tokenizer.load(path: path)
        return nil
    } catch {
        return error
    }
}

/// Vocabularies that are not byte-level BPE, and pre-tokenizers this library does not implement, are refused at
/// load with an "unsupported" error that names them.
@Test func unsupportedGGUFVocabulariesAreRefused() throws {
    // Real llama.cpp test vocabularies: SentencePiece (llama) and WordPiece (bert).
    for (file, model) in [("ggml-vocab-llama-spm.gguf", "'llama' (SentencePiece)"), ("ggml-vocab-bert-bge.gguf", "'bert' (WordPiece)")] {
        let error = try #require(loadingError(fixturesDirectory + "/" + file), "\(file) loaded")
        #expect(error.code == .unsupported)
        #expect(error.message.contains("tokenizer model \(model) is not supported"), "\(error.message)")
        #expect(error.message.contains(file))
    }
    let synthetic: [(String, [(String, String)], String)] = [
        ("t5", [("tokenizer.ggml.model", "t5")], "tokenizer model 't5' (Unigram) is not supported"),
        ("rwkv", [("tokenizer.ggml.model", "rwkv")], "tokenizer model 'rwkv' (RWKV) is not supported"),
        ("gemma4", [("tokenizer.ggml.model", "gemma4")], "tokenizer model 'gemma4' (BPE on raw UTF-8, not byte-level) is not supported"),
        ("nopre", [("tokenizer.ggml.model", "gpt2")], "no tokenizer.ggml.pre"),
        ("default", [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "default")], "pre-tokenizer 'default' is not supported"),
        ("poro", [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "poro-chat")], "pre-tokenizer 'poro-chat' is not supported"),
    ]
    for (name, pairs, message) in synthetic {
        let path = try metadataOnlyGGUF(pairs, name)
        defer { unlink(path) }
        let error = try #require(loadingError(path), "\(name) loaded")
        #expect(error.code == .unsupported, "\(name): \(error.message)")
        #expect(error.message.contains(message), "\(name): \(error.message)")
    }
}
