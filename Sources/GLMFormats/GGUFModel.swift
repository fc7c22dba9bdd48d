import GLMJSON
import GLMSupport

/// A GLM-4.x MoE model in llama.cpp's GGUF form (architecture `glm4moe`, as `convert_hf_to_gguf.py`'s
/// `Glm4MoeModel` writes it), one file or split into `name-0000N-of-0000M.gguf`, memory-mapped.
///
/// The metadata `glm4moe.*` becomes a `ModelConfig` (the same checks as config.json), and every tensor is offered
/// under its Hugging Face name (`ModelTensorSource`) so that the model loader fills the same `LayerWeights` as from
/// safetensors. Orientation: ggml lists dimensions fastest-first, so ggml `[in, out]` is the row-major `[out, in]`
/// of the checkpoint, byte for byte (the converter does not permute q/k for GLM-4 MoE: it already uses NeoX RoPE).
/// Stacked experts `ffn_*_exps` `[in, out, E]` are E row-major `[out, in]` matrices one after the other; the fused
/// `ffn_gate_up_exps` `[in, 2F, E]` holds gate then up rows per expert; a fused `attn_qkv` holds q, k, v rows.
public final class GGUFModel: ModelTensorSource, @unchecked Sendable {
    // @unchecked: immutable after init.
    public static let architecture = "glm4moe"

    /// The file given (or found in the directory given); for a split model, its first part.
    public let path: String
    public let files: [GGUFFile]
    public let config: ModelConfig
    public let tensorNames: [String]
    private let tensors: [String: ModelTensor]

    public var location: String { path }
    public var mappedFiles: [MappedFile] { files.map(\.file) }
    public func modelTensor(_ name: String) -> ModelTensor? { tensors[name] }

    /// The GGUF file a model path names: the path itself if it is a file, else the one `.gguf` model in the
    /// directory (a split set counts as one: its first part). nil if a directory holds no `.gguf` file.
    public static func modelFile(in path: String) throws(GLMError) -> String? {
        if !FileSystem.isDirectory(path) { return path.hasSuffix(".gguf") ? path : nil }
        let names = try FileSystem.listDirectory(path).filter { $0.hasSuffix(".gguf") }.sorted()
        var models: [String] = []
        for name in names {
            if let split = SplitName(name) {
                if split.index == 1 { models.append(name) }
            } else {
                models.append(name)
            }
        }
        if models.isEmpty {
            if let first = names.first {   // only later parts of a split set: its first part is missing
                throw .io("'\(path)' holds '\(first)' but not the first part of its split set")
            }
            return nil
        }
        guard models.count == 1 else {
            throw .invalidArgument("'\(path)' holds more than one GGUF model (\(models.joined(separator: ", ")));"
                + " pass the path of the one to load")
        }
        return FileSystem.join(path, models[0])
    }

    /// `name-00001-of-00005.gguf`: llama.cpp's `gguf-split` naming.
    struct SplitName {
        let prefix: String
        let index: Int
        let count: Int

        init?(_ fileName: String) {
            let base = Array(fileName.utf8)
            // "-NNNNN-of-MMMMM.gguf" is 20 bytes.
            guard base.count > 20, fileName.hasSuffix(".gguf") else { return nil }
            let tail = Array(base[(base.count - 20)...])
            func digits(_ r: Range<Int>) -> Int? {
                var v = 0
                for i in r {
                    guard tail[i] >= 48, tail[i] <= 57 else { return nil }
                    v = v * 10 + Int(tail[i] - 48)
                }
                return v
            }
            guard tail[0] == UInt8(ascii: "-"), Array(tail[6..<10]) == Array("-of-".utf8),
                  let index = digits(1..<6), let count = digits(10..<15), index >= 1, count >= index else { return nil }
            self.prefix = String(decoding: base[..<(base.count - 20)], as: UTF8.self)
            self.index = index
            self.count = count
        }

        func name(_ i: Int) -> String {
            func five(_ v: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
            return "\(prefix)-\(five(i))-of-\(five(count)).gguf"
        }
    }

    /// Opens `path` (a `.gguf` file, any part of a split set, or a directory holding one model) and checks it.
    public init(path given: String) throws(GLMError) {
        guard let first = try GGUFModel.modelFile(in: given) else {
            throw .io(FileSystem.exists(given) ? "'\(given)' is not a .gguf file or a directory holding one"
                                               : "model path '\(given)' does not exist")
        }
        guard FileSystem.exists(first) else { throw .io("GGUF file '\(first)' does not exist") }
        var paths = [first]
        let directory = GGUFModel.parent(of: first)
        let fileName = String(first.split(separator: "/").last ?? Substring(first))
        if let split = SplitName(fileName) {
            paths = (1...split.count).map { FileSystem.join(directory, split.name($0)) }
            for (i, p) in paths.enumerated() where !FileSystem.exists(p) {
                throw .io("split GGUF model '\(first)': part \(i + 1) of \(split.count), '\(p)', does not exist")
            }
        }
        var files: [GGUFFile] = []
        for p in paths { files.append(try GGUFFile(path: p)) }
        self.files = files
        self.path = paths[0]
        let head = files[0]

        // Split metadata (gguf-split writes split.no 0-based, split.count, split.tensors.count in every part).
        if paths.count > 1 || head.value(for: "split.count") != nil {
            let expected = paths.count
            var total = 0
            for (i, f) in files.enumerated() {
                let count = try f.integer(for: "split.count")
                let no = try f.integer(for: "split.no")
                guard count == nil || count == expected else {
                    throw .format("'\(f.path)': split.count is \(count ?? 0), but the file names say \(expected) parts")
                }
                guard no == nil || no == i else {
                    throw .format("'\(f.path)': split.no is \(no ?? 0), expected \(i) (part \(i + 1) of \(expected))")
                }
                total += f.tensors.count
            }
            if let declared = try head.integer(for: "split.tensors.count"), declared != total {
                throw .format("'\(head.path)': split.tensors.count is \(declared), but the \(expected) parts hold \(total) tensors")
            }
        }

        let arch = try head.string(for: "general.architecture")
        guard arch == GGUFModel.architecture else {
            throw .unsupported("'\(head.path)': general.architecture is \(arch.map { "\"\($0)\"" } ?? "absent");"
                + " this library runs \"\(GGUFModel.architecture)\" GGUF models (GLM-4.5/4.6/4.7) only")
        }

        // Every tensor of every part, by GGUF name.
        var raw: [String: (GGUFTensorInfo, GGUFFile)] = [:]
        var order: [String] = []
        for f in files {
            for t in f.tensors {
                if let other = raw[t.name] {
                    throw .format("GGUF tensor '\(t.name)' appears in two files: '\(other.1.path)' and '\(f.path)'")
                }
                raw[t.name] = (t, f)
                order.append(t.name)
            }
        }
        config = try GGUFModel.readConfig(head, tensors: raw)

        var tensors: [String: ModelTensor] = [:]
        var names: [String] = []
        for ggufName in order {
            guard let (info, file) = raw[ggufName] else { continue }
            for v in try GGUFModel.views(of: info, in: file, config: config) {
                if tensors[v.name] != nil {
                    throw .format("'\(file.path)': GGUF tensor '\(ggufName)' maps to '\(v.name)', which another tensor already provides")
                }
                tensors[v.name] = v
                names.append(v.name)
            }
        }
        self.tensors = tensors
        self.tensorNames = names
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    // MARK: metadata → config

    /// `glm4moe.*` as the config.json keys `ModelConfig` reads. Flags the metadata does not carry come from the
    /// tensors (attention bias, q/k norm, tied output), as llama.cpp decides them.
    static func readConfig(_ f: GGUFFile, tensors: [String: (GGUFTensorInfo, GGUFFile)]) throws(GLMError) -> ModelConfig {
        let a = GGUFModel.architecture + "."
        func int(_ key: String) throws(GLMError) -> Int? { try f.integer(for: a + key) }
        // GGUF stores these as f32; config.json wrote them as decimals (1e-05, not 9.99999974738e-06). The shortest
        // decimal that rounds to the f32 gives back the config.json value, so both paths hold the same Double.
        func real(_ key: String) throws(GLMError) -> Double? {
            guard let d = try f.double(for: a + key) else { return nil }
            let single = Float(d)
            return Double(single) == d ? (Double("\(single)") ?? d) : d
        }
        func required(_ key: String) throws(GLMError) -> Int {
            guard let v = try int(key) else { throw .format("'\(f.path)': GGUF metadata has no '\(a + key)'") }
            return v
        }
        var o = JSONObject()
        o["model_type"] = .string(ModelConfig.supportedModelType)
        o["architectures"] = .array([.string(ModelConfig.supportedArchitecture)])
        let nextn = try int("nextn_predict_layers") ?? 0
        let blocks = try required("block_count")
        guard nextn >= 0, blocks > nextn else {
            throw .format("'\(f.path)': \(a)block_count \(blocks) must exceed \(a)nextn_predict_layers \(nextn)")
        }
        o["num_hidden_layers"] = JSONValue(blocks - nextn)
        o["num_nextn_predict_layers"] = JSONValue(nextn)
        let hidden = try required("embedding_length")
        o["hidden_size"] = JSONValue(hidden)
        o["max_position_embeddings"] = JSONValue(try required("context_length"))
        o["intermediate_size"] = JSONValue(try required("feed_forward_length"))
        let heads = try required("attention.head_count")
        o["num_attention_heads"] = JSONValue(heads)
        o["num_key_value_heads"] = JSONValue(try int("attention.head_count_kv") ?? heads)
        let headDim = try int("attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        if let v = try int("attention.value_length"), v != headDim {
            throw .unsupported("'\(f.path)': \(a)attention.value_length \(v) differs from key_length \(headDim)"
                + " (GLM-4 MoE uses one head_dim)")
        }
        o["head_dim"] = JSONValue(headDim)
        if let theta = try real("rope.freq_base") { o["rope_theta"] = .double(theta) }
        let rotary = try int("rope.dimension_count") ?? headDim / 2
        guard headDim > 0, rotary > 0, rotary <= headDim else {
            throw .format("'\(f.path)': \(a)rope.dimension_count \(rotary) must be in 1...head_dim (\(headDim))")
        }
        o["partial_rotary_factor"] = .double(Double(rotary) / Double(headDim))
        if let scaling = try f.string(for: a + "rope.scaling.type"), scaling != "none" {
            throw .unsupported("'\(f.path)': \(a)rope.scaling.type \"\(scaling)\" is not supported (only plain RoPE)")
        }
        if let eps = try real("attention.layer_norm_rms_epsilon") { o["rms_norm_eps"] = .double(eps) }
        o["n_routed_experts"] = JSONValue(try required("expert_count"))
        o["num_experts_per_tok"] = JSONValue(try required("expert_used_count"))
        o["n_shared_experts"] = JSONValue(try int("expert_shared_count") ?? 0)
        o["moe_intermediate_size"] = JSONValue(try required("expert_feed_forward_length"))
        o["first_k_dense_replace"] = JSONValue(try int("leading_dense_block_count") ?? 0)
        if let g = try int("expert_group_count") { o["n_group"] = JSONValue(g) }
        if let g = try int("expert_group_used_count") { o["topk_group"] = JSONValue(g) }
        if let s = try real("expert_weights_scale") { o["routed_scaling_factor"] = .double(s) }
        if let n = try f.bool(for: a + "expert_weights_norm") { o["norm_topk_prob"] = .bool(n) }
        // llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE: 1 softmax, 2 sigmoid. GLM-4 MoE routes by sigmoid.
        if let gating = try int("expert_gating_func"), gating != 2 {
            throw .unsupported("'\(f.path)': \(a)expert_gating_func is \(gating); GLM-4 MoE routes by sigmoid (2)")
        }
        guard let embed = tensors["token_embd.weight"]?.0, embed.dimensions.count == 2 else {
            throw .format("'\(f.path)': GGUF model has no 2-D tensor 'token_embd.weight'")
        }
        o["vocab_size"] = JSONValue(embed.dimensions[1])
        o["attention_bias"] = .bool(tensors["blk.0.attn_q.bias"] != nil || tensors["blk.0.attn_qkv.bias"] != nil)
        o["use_qk_norm"] = .bool(tensors["blk.0.attn_q_norm.weight"] != nil)
        o["tie_word_embeddings"] = .bool(tensors["output.weight"] == nil)
        // The ids that end generation. Hugging Face lists them all in generation_config.json (GLM-4.x:
        // <|endoftext|>, <|user|>, <|observation|>); the converter spreads the same ids over eos, eot and eom,
        // and llama.cpp ends generation on each of them, so all three count here.
        var endIDs: [Int] = []
        for key in ["eos", "eot", "eom"] {
            if let id = try f.integer(for: "tokenizer.ggml.\(key)_token_id"), !endIDs.contains(id) { endIDs.append(id) }
        }
        if !endIDs.isEmpty { o["eos_token_id"] = .array(endIDs.map { JSONValue($0) }) }
        if let bos = try f.integer(for: "tokenizer.ggml.bos_token_id") { o["bos_token_id"] = JSONValue(bos) }
        if let pad = try f.integer(for: "tokenizer.ggml.padding_token_id") { o["pad_token_id"] = JSONValue(pad) }
        let config = try ModelConfig(json: .object(o), source: f.path + " (GGUF metadata)")
        guard config.rotaryDim == rotary else {
            throw .format("'\(f.path)': \(a)rope.dimension_count \(rotary) is not head_dim \(headDim) × a factor"
                + " that transformers would reproduce")
        }
        return config
    }

    // MARK: GGUF tensors → Hugging Face names

    /// The Hugging Face tensors one GGUF tensor holds (one, or one per expert / per fused projection).
    static func views(of t: GGUFTensorInfo, in file: GGUFFile, config c: ModelConfig) throws(GLMError) -> [ModelTensor] {
        let shape = Array(t.dimensions.reversed())   // row-major, as Hugging Face writes it
        guard let type = t.type else {
            throw .unsupported("'\(file.path)': GGUF tensor '\(t.name)' has ggml type id \(t.typeID), which libglm does not know")
        }
        let whole = try file.data(of: t)
        let origin = "GGUF tensor '\(t.name)' (\(type.name)\(shape)) in '\(file.path)'"
        func view(_ name: String, _ shape: [Int], byteOffset: Int, _ note: String = "") throws(GLMError) -> ModelTensor {
            let elements = shape.reduce(1, *)
            let count = elements / type.blockSize * type.bytesPerBlock
            guard byteOffset >= 0, byteOffset <= whole.count, count <= whole.count - byteOffset,
                  let base = whole.baseAddress else {
                throw .format("\(origin): \(name) would lie outside the tensor's data")
            }
            // F32/F16/BF16 are read through typed pointers: their first byte must be aligned to the element size
            // (general.alignment may be any power of two, even 1). Block types are read bytewise.
            if type.blockSize == 1, Int(bitPattern: base + byteOffset) % type.bytesPerBlock != 0 {
                throw .format("\(origin): data at file offset \(file.dataOffset + t.offset + byteOffset) is not aligned to"
                    + " its \(type.bytesPerBlock)-byte elements (general.alignment \(file.alignment))")
            }
            return ModelTensor(name: name, encoding: .ggml(type), shape: shape,
                               bytes: UnsafeRawBufferPointer(start: base + byteOffset, count: count),
                               mapping: file.file, origin: origin + note, sourceName: t.name)
        }
        let parts = t.name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // Top level.
        switch t.name {
        case "token_embd.weight": return [try view("model.embed_tokens.weight", shape, byteOffset: 0)]
        case "output_norm.weight": return [try view("model.norm.weight", shape, byteOffset: 0)]
        case "output.weight": return [try view("lm_head.weight", shape, byteOffset: 0)]
        default: break
        }
        guard parts.count >= 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1] else {
            throw .format("\(origin) is not part of a \(GGUFModel.architecture) model")
        }
        let p = "model.layers.\(layer)."
        let role = parts[2..<(parts.count - 1)].joined(separator: ".")
        let suffix = parts[parts.count - 1]
        let simple: [String: String] = [
            "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
            "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
            "ffn_gate_inp": "mlp.gate", "ffn_gate_shexp": "mlp.shared_experts.gate_proj",
            "ffn_up_shexp": "mlp.shared_experts.up_proj", "ffn_down_shexp": "mlp.shared_experts.down_proj",
            "nextn.eh_proj": "eh_proj", "nextn.enorm": "enorm", "nextn.hnorm": "hnorm",
            "nextn.embed_tokens": "embed_tokens", "nextn.shared_head_head": "shared_head.head",
            "nextn.shared_head_norm": "shared_head.norm",
        ]
        if role == "exp_probs_b" && suffix == "bias" {
            return [try view(p + "mlp.gate.e_score_correction_bias", shape, byteOffset: 0)]
        }
        if let hf = simple[role], suffix == "weight" || suffix == "bias" {
            return [try view(p + hf + "." + suffix, shape, byteOffset: 0)]
        }
        // Stacked experts [E, out, in] (ggml [in, out, E]).
        let stacked = ["ffn_gate_exps": ["gate_proj"], "ffn_up_exps": ["up_proj"], "ffn_down_exps": ["down_proj"],
                       "ffn_gate_up_exps": ["gate_proj", "up_proj"]]
        if let projections = stacked[role], suffix == "weight" {
            guard shape.count == 3, shape[1] % projections.count == 0 else {
                throw .format("\(origin): expected 3 dimensions [in, out, experts] in ggml order")
            }
            let (experts, rows, columns) = (shape[0], shape[1] / projections.count, shape[2])
            guard let rowBytes = TensorEncoding.ggml(type).rowBytes(columns: columns) else {
                throw .format("\(origin): row length \(columns) is not a whole number of \(type.name) blocks")
            }
            var out: [ModelTensor] = []
            for e in 0..<experts {
                for (k, proj) in projections.enumerated() {
                    let offset = (e * projections.count + k) * rows * rowBytes
                    out.append(try view(p + "mlp.experts.\(e).\(proj).weight", [rows, columns], byteOffset: offset,
                                        " (expert \(e)\(projections.count > 1 ? ", \(proj)" : ""))"))
                }
            }
            return out
        }
        // Fused q/k/v rows (weight [q+2kv, in]) or bias [q+2kv].
        if role == "attn_qkv", suffix == "weight" || suffix == "bias" {
            let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
            guard shape.first == q + 2 * kv, shape.count == (suffix == "weight" ? 2 : 1) else {
                throw .format("\(origin): expected \(q + 2 * kv) fused q/k/v rows")
            }
            let columns = shape.count == 2 ? shape[1] : 1
            guard let rowBytes = TensorEncoding.ggml(type).rowBytes(columns: columns) else {
                throw .format("\(origin): row length \(columns) is not a whole number of \(type.name) blocks")
            }
            if suffix == "bias" && type.blockSize != 1 {
                throw .unsupported("\(origin): a quantised bias cannot be split into q, k and v")
            }
            let sizes = [("q_proj", q, 0), ("k_proj", kv, q), ("v_proj", kv, q + kv)]
            var out: [ModelTensor] = []
            for (proj, rows, first) in sizes {
                let s = suffix == "weight" ? [rows, columns] : [rows]
                let offset = suffix == "weight" ? first * rowBytes : first * type.bytesPerBlock
                out.append(try view(p + "self_attn.\(proj).\(suffix)", s, byteOffset: offset, " (\(proj) rows)"))
            }
            return out
        }
        throw .format("\(origin) is not part of a \(GGUFModel.architecture) model")
    }
}
