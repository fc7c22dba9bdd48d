import GLMSupport
import Glibc
import Testing
@testable import GLMTokenizer

/// Loader errors name the real problem and the file it is in.
@Suite struct LoaderMessageTests {
    /// Writes the files into a fresh directory, loads its tokenizer.json and returns the error (nil if it loaded).
    func loadError(_ files: [String: String]) -> GLMError? {
        var template = Array("/tmp/glm-tokenizer-messages-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return GLMError.io("mkdtemp failed") }
        let directory = String(cString: made)
        defer {
            for name in files.keys { unlink(directory + "/" + name) }
            rmdir(directory)
        }
        for (name, text) in files {
            guard let f = fopen(directory + "/" + name, "wb") else { return GLMError.io("cannot write \(name)") }
            _ = Array(text.utf8).withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
        }
        do {
            _ = try Tokenizer.load(path: directory + "/tokenizer.json")
            return nil
        } catch {
            return error
        }
    }

    static let byteLevel = #""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"decoder":{"type":"ByteLevel"},"added_tokens":[]"#
    static let bpe = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},\(byteLevel)}"

    @Test func theBaseTokenizerLoads() {
        #expect(loadError(["tokenizer.json": LoaderMessageTests.bpe]) == nil)
        #expect(loadError(["tokenizer.json": LoaderMessageTests.bpe, "tokenizer_config.json": #"{"eos_token": "ab"}"#]) == nil)
    }

    @Test func otherTokenizerModelsAreNamedAsUnsupported() {
        let models = [
            // HF writes "type" first; a Unigram vocabulary is a list of [piece, score].
            ("Unigram", #"{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0.0],["a",-1.5]],"byte_fallback":false}"#),
            ("Unigram", #"{"vocab":[["<unk>",0.0],["a",-1.5]],"type":"Unigram"}"#),
            ("WordPiece", ###"{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","vocab":{"[UNK]":0,"a":1}}"###),
            ("WordLevel", #"{"type":"WordLevel","vocab":{"[UNK]":0,"a":1},"unk_token":"[UNK]"}"#),
        ]
        for (type, model) in models {
            let error = loadError(["tokenizer.json": "{\"model\":\(model),\(LoaderMessageTests.byteLevel)}"])
            #expect(error?.code == .unsupported, "\(type): \(error?.message ?? "loaded")")
            #expect(error?.message.contains("tokenizer model '\(type)' is not supported") == true,
                    "\(error?.message ?? "loaded")")
        }
        let listWithoutType = loadError(["tokenizer.json": "{\"model\":{\"vocab\":[[\"a\",0.0]]},\(LoaderMessageTests.byteLevel)}"])
        #expect(listWithoutType?.message.contains("model.vocab is a list") == true, "\(listWithoutType?.message ?? "loaded")")
    }

    @Test func aDuplicateVocabularyIDIsReportedAsSuch() {
        let text = LoaderMessageTests.bpe.replacingOccurrences(of: #""b":1"#, with: #""b":0"#)
        #expect(text != LoaderMessageTests.bpe)
        let error = loadError(["tokenizer.json": text])
        #expect(error?.code == .format)
        #expect(error?.message.contains("token id 0 is given twice in the vocabulary, to 'a' and 'b'") == true,
                "\(error?.message ?? "loaded")")
    }

    @Test func aBrokenTokenizerConfigIsNamed() {
        let error = loadError(["tokenizer.json": LoaderMessageTests.bpe, "tokenizer_config.json": #"{"eos_token": "#])
        #expect(error?.code == .format)
        #expect(error?.message.contains("tokenizer_config.json':") == true, "\(error?.message ?? "loaded")")
        #expect(error?.message.contains("line 1") == true, "\(error?.message ?? "loaded")")
    }

    /// Found by the tokenizer-json fuzz target (Fuzz/corpus/tokenizer-json/post-processor-id-outside-vocabulary.json):
    /// a TemplateProcessing that lists its own ids put id 6687 in front of every encode of a 4,292-id vocabulary.
    @Test func postProcessorIDsOutsideTheVocabularyAreRefused() {
        func withPostProcessor(_ json: String) -> String {
            LoaderMessageTests.bpe.replacingOccurrences(of: "\"added_tokens\":[]", with: "\"added_tokens\":[],\"post_processor\":" + json)
        }
        let template = #"{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"ab","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"ab":{"id":"ab","ids":[ID],"tokens":["ab"]}}}"#
        // In range: loads (id 2 is "ab").
        #expect(loadError(["tokenizer.json": withPostProcessor(template.replacingOccurrences(of: "ID", with: "2"))]) == nil)
        for bad in ["3", "6687"] {
            let error = loadError(["tokenizer.json": withPostProcessor(template.replacingOccurrences(of: "ID", with: bad))])
            #expect(error?.code == .format)
            #expect(error?.message.contains("post_processor adds token id \(bad), outside the vocabulary (3 ids)") == true,
                    "\(error?.message ?? "loaded")")
        }
        let roberta = #"{"type":"RobertaProcessing","cls":["a",0],"sep":["b",7]}"#
        #expect(loadError(["tokenizer.json": withPostProcessor(roberta)])?.message.contains("token id 7, outside") == true)
    }
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            result += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return result + rest
    }
}
