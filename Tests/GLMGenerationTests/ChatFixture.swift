import GLMFormats
import GLMJSON
import GLMModel
import GLMSupport
import GLMTemplate
import GLMTokenizer
@testable import GLMGeneration

/// The trained tiny chat model (tools/make_demo_model.py) and its transformers greedy reference, loaded once.
final class ChatFixture: @unchecked Sendable {
    struct Case {
        var name: String
        var request: JSONValue
        var promptText: String
        var promptIDs: [Int32]
        var completionIDs: [Int32]
        var completionText: String
    }

    static let directory: String = {
        // #filePath is .../Tests/GLMGenerationTests/ChatFixture.swift
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(2)
        return (parts + ["Fixtures", "models", "glm-tiny-chat"]).joined(separator: "/")
    }()

    static let shared: Result<ChatFixture, GLMError> = {
        do throws(GLMError) { return .success(try ChatFixture()) } catch { return .failure(error) }
    }()

    static func load() throws(GLMError) -> ChatFixture { try shared.get() }

    let model: Model
    let tokenizer: Tokenizer
    let template: ChatTemplate
    let generationConfig: GenerationConfig
    let cases: [String: Case]
    let eosTokenIDs: [Int32]

    private init() throws(GLMError) {
        let dir = ChatFixture.directory
        model = try Model.load(directory: dir, threads: 1)
        tokenizer = try Tokenizer.load(path: dir)
        guard let t = try ChatTemplate.load(modelDirectory: dir) else { throw .io("\(dir) has no chat template") }
        template = t
        generationConfig = try GenerationConfig(contentsOf: FileSystem.join(dir, "generation_config.json"))
        let reference = try JSONValue.parse(FileSystem.readText(FileSystem.join(dir, "greedy.json")))
        var cases: [String: Case] = [:]
        for c in reference["cases"]?.arrayValue ?? [] {
            guard let name = c["name"]?.stringValue, let request = c["request"] else { continue }
            cases[name] = Case(name: name, request: request,
                               promptText: c["prompt_text"]?.stringValue ?? "",
                               promptIDs: ChatFixture.ids(c["prompt_ids"]),
                               completionIDs: ChatFixture.ids(c["completion_ids"]),
                               completionText: c["completion_text"]?.stringValue ?? "")
        }
        self.cases = cases
        eosTokenIDs = ChatFixture.ids(reference["eos_token_ids"])
    }

    static func ids(_ value: JSONValue?) -> [Int32] {
        (value?.arrayValue ?? []).compactMap { $0.intValue.map { Int32($0) } }
    }

    func session(contextLength: Int = 512, threads: Int = 1) throws(GLMError) -> ChatSession {
        try ChatSession(model: model, tokenizer: tokenizer, template: template, generationConfig: generationConfig,
                        contextLength: contextLength, threads: threads)
    }

    func request(_ name: String, _ edit: (inout JSONObject) -> Void = { _ in }) -> JSONValue {
        guard case .object(var o)? = cases[name]?.request else { return .null }
        edit(&o)
        return .object(o)
    }
}

/// A response without the fields that differ between any two calls (`id`, `created`).
func withoutIdentity(_ response: JSONValue) -> JSONValue {
    guard case .object(var o) = response else { return response }
    o["id"] = nil
    o["created"] = nil
    return .object(o)
}

/// `choices[0].message`, `choices[0].finish_reason` and `usage` of a response.
func message(_ response: JSONValue) -> JSONValue? { response["choices"]?.arrayValue?.first?["message"] }
func finishReason(_ response: JSONValue) -> String? {
    response["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue
}
func cachedTokens(_ response: JSONValue) -> Int? { response["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue }
