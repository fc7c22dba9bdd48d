import GLMJSON
import GLMSupport
import GLMTokenizer
@testable import GLMGrammar

/// A vocabulary from explicit byte strings; the last id is the end token.
struct TestVocabulary {
    let pieces: [[UInt8]]
    let vocabulary: TokenVocabulary
    var end: Int32 { Int32(pieces.count - 1) }

    init(_ texts: [String], raw: [[UInt8]] = [], special: [String] = []) {
        var pieces = texts.map { Array($0.utf8) } + raw
        var flags = pieces.map { _ in false }
        for s in special {
            pieces.append(Array(s.utf8))
            flags.append(true)
        }
        pieces.append(Array("<eos>".utf8))
        flags.append(true)
        self.pieces = pieces
        vocabulary = TokenVocabulary(tokens: pieces, special: flags)
    }

    func compile(_ c: Constraint, whitespace: Int = 20, strict: Bool = false,
                 reasoning: Bool = false) throws(GLMError) -> CompiledGrammar {
        var o = ConstraintOptions()
        o.endTokenIDs = [end]
        o.maxWhitespace = whitespace
        o.strict = strict
        o.reasoning = reasoning
        return try ConstraintCompiler.compile(c, vocabulary: vocabulary, options: o)
    }
}

enum Fixtures {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return (parts + ["Fixtures"]).joined(separator: "/")
    }()

    static func path(_ relative: String) -> String { root + "/" + relative }

    /// The schemas of Tests/Fixtures/grammar (name, schema), from every .jsonl file there.
    static func schemas() throws -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        for file in ["grammar/handwritten.jsonl", "grammar/jsonschemabench.jsonl"] {
            for line in try FileSystem.readText(path(file)).split(separator: "\n") where !line.isEmpty {
                let v = try JSONValue.parse(String(line))
                if let name = v["name"]?.stringValue, let schema = v["schema"] { out.append((name, schema)) }
            }
        }
        return out
    }

    static let glmTokenizer: Result<Tokenizer, GLMError> = {
        do throws(GLMError) { return .success(try Tokenizer.load(path: path("models/glm-tiny-chat"))) } catch {
            return .failure(error)
        }
    }()
}

/// A deterministic generator for tests (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

extension GrammarMatcher {
    func allowedSet() throws -> Set<Int32> { Set(try allowedTokens()) }
}
