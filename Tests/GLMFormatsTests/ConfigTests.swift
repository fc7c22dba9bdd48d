import GLMFormats
import GLMJSON
import GLMSupport
import Testing

@Suite struct ConfigTests {
    /// configs.json: config.json variants and what transformers' Glm4MoeConfig reads from them.
    @Test func matchesTransformersOnBothSpellingsAndDefaults() throws {
        let cases = try #require(JSONValue.parse(FileSystem.readText(formatsFixture("configs.json"))).arrayValue)
        #expect(cases.count >= 8)
        for c in cases {
            let name = c["name"]?.stringValue ?? "?"
            let input = try #require(c["config"]), expected = try #require(c["expected"]?.objectValue)
            if name == "defaults_only" {
                // HF's bare defaults give head_dim 4096 // 96 = 42 and an odd 21-dim rotary part: rejected.
                expectGLMError(.format, ["partial_rotary_factor", "head_dim 42", "21 rotary"]) {
                    _ = try ModelConfig(json: input, source: name)
                }
                continue
            }
            let config = try ModelConfig(json: input, source: name)
            let actual = config.json
            for (key, value) in expected {
                var got = actual[key] ?? .null
                if key == "eos_token_id" { got = .array(config.eosTokenIDs.map { JSONValue($0) }) }
                switch value {
                case .double(let d): #expect(got.doubleValue == d, "\(name).\(key)")
                default: #expect(got == value, "\(name).\(key): \(got.compactJSON) vs \(value.compactJSON)")
                }
            }
        }
    }

    /// The tiny models' config.json files against the values their reference run used.
    @Test(arguments: TensorStoreTests.tinyModels)
    func tinyModelConfigs(_ model: String) throws {
        let dir = modelFixture(model)
        let parsed = try #require(JSONValue.parse(FileSystem.readText(dir + "/reference.json"))["parsed_config"])
        let c = try ModelConfig(contentsOf: dir + "/config.json")
        let ints: [(String, Int)] = [
            ("V", c.vocabSize), ("H", c.hiddenSize), ("FF", c.intermediateSize), ("I", c.moeIntermediateSize),
            ("L", c.numHiddenLayers), ("nH", c.numAttentionHeads), ("nKV", c.numKeyValueHeads), ("D", c.headDim),
            ("R", c.rotaryDim), ("dense", c.firstKDenseReplace), ("E", c.nRoutedExperts), ("shared", c.nSharedExperts),
            ("K", c.numExpertsPerTok), ("n_group", c.nGroup), ("topk_group", c.topkGroup),
        ]
        for (key, value) in ints { #expect(parsed[key]?.intValue == value, "\(model).\(key)") }
        #expect(parsed["theta"]?.doubleValue == c.ropeTheta)
        #expect(parsed["eps"]?.doubleValue == c.rmsNormEps)
        #expect(parsed["rsf"]?.doubleValue == c.routedScalingFactor)
        #expect(parsed["bias"]?.boolValue == c.attentionBias && parsed["qk_norm"]?.boolValue == c.useQKNorm)
        #expect(parsed["norm_topk"]?.boolValue == c.normTopkProb && parsed["tied"]?.boolValue == c.tieWordEmbeddings)
        #expect(c.modelType == "glm4_moe" && c.architectures == ["Glm4MoeForCausalLM"])
        #expect(c.eosTokenIDs.count == 3 && c.padTokenID == c.eosTokenIDs.first && c.bosTokenID == nil)

        let g = try GenerationConfig(contentsOf: dir + "/generation_config.json")
        #expect(g.eosTokenIDs == c.eosTokenIDs && g.padTokenID == c.padTokenID)
        #expect(g.temperature == 1.0 && g.topP == 0.95 && g.doSample == true && g.topK == nil)
    }

    @Test func glm47ValuesAndNormalisedJSON() throws {
        let c = try ModelConfig(contentsOf: modelFixture("glm47") + "/config.json")
        #expect(c.torchDtype == "float32" && c.numNextnPredictLayers == 1 && c.ropeType == "default")
        #expect(c.quantizationConfig == nil)
        let json = c.json
        #expect(json["rope_theta"] == .double(1e6) && json["rotary_dim"] == JSONValue(8))
        #expect(json["eos_token_id"] == .array([JSONValue(489), JSONValue(496), JSONValue(498)]))
        #expect(json["bos_token_id"] == .null)
        // The normalised form parses back to the same configuration.
        let again = try ModelConfig(json: JSONValue.parse(json.pythonJSON), source: "normalised")
        #expect(again.json == json)
    }

    @Test func generationConfigVariants() throws {
        let g = try GenerationConfig(json: JSONValue.parse(
            #"{"eos_token_id": 151329, "bos_token_id": null, "top_k": 40, "max_new_tokens": 512, "max_length": 1024,"#
            + #" "repetition_penalty": 1.1, "min_p": 0.05, "do_sample": false}"#), source: "g")
        #expect(g.eosTokenIDs == [151329] && g.bosTokenID == nil && g.topK == 40 && g.maxNewTokens == 512)
        #expect(g.maxLength == 1024 && g.repetitionPenalty == 1.1 && g.minP == 0.05 && g.doSample == false)
        #expect(g.temperature == nil && g.topP == nil)
        let empty = try GenerationConfig(json: .object(JSONObject()), source: "e")
        #expect(empty.eosTokenIDs.isEmpty && empty.padTokenID == nil)

        let bad: [(String, String)] = [
            (#"{"temperature": -1}"#, "\"temperature\" is -1.0"),
            (#"{"temperature": "hot"}"#, "expected a number"),
            (#"{"top_p": 1.5}"#, "\"top_p\" is 1.5"),
            (#"{"top_k": -3}"#, "\"top_k\" is -3"),
            (#"{"top_k": 2.5}"#, "expected an integer"),
            (#"{"do_sample": 1}"#, "expected true or false"),
            (#"{"eos_token_id": [1, "x"]}"#, "\"eos_token_id\""),
            (#"{"pad_token_id": -1}"#, "\"pad_token_id\" is -1"),
            (#"{"max_new_tokens": -5}"#, "\"max_new_tokens\""),
            (#"{"repetition_penalty": 0}"#, "\"repetition_penalty\""),
            ("[1]", "expected a JSON object"),
        ]
        for (text, part) in bad {
            expectGLMError(.format, ["'gen.json'", part]) {
                _ = try GenerationConfig(json: JSONValue.parse(text), source: "gen.json")
            }
        }
    }

    /// Inconsistent or malformed configs: the error names the file and the field, and says what was expected.
    @Test func inconsistentConfigsAreErrors() throws {
        let base = try #require(JSONValue.parse(FileSystem.readText(formatsFixture("configs.json")))
            .arrayValue?.first?["config"]?.objectValue)  // GLM-4.7 values, legacy spelling
        let cases: [(String, JSONValue?, GLMError.Code, [String])] = [
            ("num_key_value_heads", JSONValue(7), .format, ["\"num_key_value_heads\" is 7", "does not divide"]),
            ("head_dim", JSONValue(10), .format, ["\"partial_rotary_factor\"", "5 rotary", "even"]),
            ("head_dim", JSONValue(0), .format, ["\"head_dim\" is 0"]),
            ("partial_rotary_factor", .double(1.5), .format, ["\"partial_rotary_factor\" is 1.5", "(0, 1]"]),
            ("num_experts_per_tok", JSONValue(200), .format, ["\"num_experts_per_tok\" is 200", "n_routed_experts 160"]),
            ("n_group", JSONValue(3), .format, ["\"n_group\" is 3", "does not divide n_routed_experts 160"]),
            ("topk_group", JSONValue(2), .format, ["\"topk_group\" is 2", "more than n_group 1"]),
            ("hidden_size", JSONValue(-5), .format, ["\"hidden_size\" is -5"]),
            ("vocab_size", .string("big"), .format, ["\"vocab_size\" is \"big\"", "expected an integer"]),
            ("vocab_size", .double(1.5), .format, ["expected an integer"]),
            ("vocab_size", .integer("100000000000000000000000"), .format, ["does not fit"]),
            ("vocab_size", JSONValue(1 << 40), .format, ["\"vocab_size\" is 1099511627776"]),
            ("use_qk_norm", .string("yes"), .format, ["\"use_qk_norm\"", "true or false"]),
            ("eos_token_id", .array([JSONValue(1), JSONValue(-2)]), .format, ["\"eos_token_id\""]),
            ("first_k_dense_replace", JSONValue(100), .format, ["\"first_k_dense_replace\" is 100"]),
            ("n_shared_experts", JSONValue(-1), .format, ["\"n_shared_experts\" is -1"]),
            ("rms_norm_eps", JSONValue(0), .format, ["\"rms_norm_eps\""]),
            ("routed_scaling_factor", .string("2.5"), .format, ["\"routed_scaling_factor\"", "expected a number"]),
            ("rope_theta", JSONValue(-1), .format, ["\"rope_theta\" is -1.0"]),
            ("rope_scaling", .string("x"), .format, ["\"rope_scaling\"", "expected an object"]),
            ("rope_scaling", .object(JSONObject([("rope_type", .string("yarn")), ("factor", JSONValue(4))])),
             .unsupported, ["rope_type \"yarn\""]),
            ("rope_scaling", .object(JSONObject([("rope_theta", .string("a"))])), .format,
             ["\"rope_scaling.rope_theta\"", "expected a number"]),
            ("hidden_act", .string("gelu"), .unsupported, ["hidden_act \"gelu\""]),
            ("architectures", JSONValue(1), .format, ["\"architectures\" is not a list"]),
        ]
        for (key, value, code, parts) in cases {
            var object = base
            object[key] = value
            expectGLMError(code, ["'cfg.json'"] + parts) { _ = try ModelConfig(json: .object(object), source: "cfg.json") }
        }
        // n_group 80 of 160 experts leaves 2 per group (fine), but 4 groups of 2 cannot supply top-8 with topk_group 1.
        var grouped = base
        grouped["n_group"] = JSONValue(80)
        expectGLMError(.format, ["\"topk_group\" is 1", "cannot supply num_experts_per_tok 8"]) {
            _ = try ModelConfig(json: .object(grouped), source: "cfg.json")
        }
        grouped["n_group"] = JSONValue(160)
        grouped["topk_group"] = JSONValue(8)
        expectGLMError(.format, ["\"n_group\" is 160", "group routing needs 2"]) {
            _ = try ModelConfig(json: .object(grouped), source: "cfg.json")
        }
    }

    @Test func otherModelTypesAreUnsupported() throws {
        let llama = try JSONValue.parse(#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}"#)
        expectGLMError(.unsupported, ["'cfg.json'", "model_type \"llama\"", "glm4_moe"]) {
            _ = try ModelConfig(json: llama, source: "cfg.json")
        }
        expectGLMError(.unsupported, ["has no \"model_type\" and no \"architectures\""]) {
            _ = try ModelConfig(json: .object(JSONObject()), source: "cfg.json")
        }
        // The architecture alone is enough (model_type is then reported as glm4_moe).
        let byArchitecture = try JSONValue.parse(#"{"architectures": ["Glm4MoeForCausalLM"], "head_dim": 128}"#)
        #expect(try ModelConfig(json: byArchitecture, source: "cfg.json").modelType == "glm4_moe")
        #expect(try ModelConfig(json: JSONValue.parse(#"{"model_type": "glm4_moe", "head_dim": 128}"#),
                                source: "cfg.json").architectures.isEmpty)
    }

    /// A config.json naming another architecture is refused even when the other field says GLM-4 MoE.
    @Test func aForeignArchitectureIsUnsupportedWhateverTheOtherFieldSays() throws {
        let cases: [(String, String)] = [
            (#"{"model_type": "glm4_moe", "architectures": ["LlamaForCausalLM"]}"#, "\"LlamaForCausalLM\""),
            (#"{"architectures": ["LlamaForCausalLM"]}"#, "\"LlamaForCausalLM\""),
            (#"{"model_type": "glm4_moe", "architectures": ["Glm4MoeForCausalLM", "Glm4vMoeForConditionalGeneration"]}"#,
             "\"Glm4vMoeForConditionalGeneration\""),
            (#"{"model_type": "llama", "architectures": ["Glm4MoeForCausalLM"]}"#, "model_type \"llama\""),
            (#"{"model_type": "glm4_moe_mtp"}"#, "model_type \"glm4_moe_mtp\""),
        ]
        for (text, named) in cases {
            expectGLMError(.unsupported, ["'cfg.json'", named, "Glm4MoeForCausalLM"]) {
                _ = try ModelConfig(json: JSONValue.parse(text), source: "cfg.json")
            }
        }
    }

    @Test func configFilesOnDisk() throws {
        let dir = TemporaryDirectory()
        expectGLMError(.io, ["config.json"]) { _ = try ModelConfig(contentsOf: dir.file("config.json")) }
        let path = try dir.write("config.json", text: #"{"model_type": "glm4_moe", "#)
        expectGLMError(.format, [path, "invalid JSON", "line 1"]) { _ = try ModelConfig(contentsOf: path) }
        let gen = try dir.write("generation_config.json", [0x7B, 0xFF, 0x7D])
        expectGLMError(.format, [gen]) { _ = try GenerationConfig(contentsOf: gen) }
    }
}
