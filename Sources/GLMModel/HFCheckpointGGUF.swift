import CGLMKernels
import GLMFormats
import GLMJSON
import GLMSupport
import Glibc

/// A Hugging Face GLM-4 MoE checkpoint directory (BF16/F16/F32 safetensors, or the FP8 checkpoints libglm loads)
/// seen as the GGUF file llama.cpp's `convert_hf_to_gguf.py` (class Glm4MoeModel) writes from it: the same metadata
/// keys, value types and order, the same tensor names and ggml shapes, routed experts stacked expert-major into
/// `ffn_{gate,up,down}_exps`, 1-D tensors, norms and `ffn_gate_inp` as F32. Nothing is read until asked for:
/// `rows(of:_:_:into:)` produces the rows of one tensor, in the type the converter would have stored them in,
/// straight from the mapped safetensors (a pointer when no conversion is needed). GGUFQuantizer then applies
/// llama-quantize's recipe to these tensors exactly as to a GGUF source, so the output equals
/// `convert_hf_to_gguf.py` followed by `llama-quantize` (docs/MODEL.md §2.6).
///
/// Each tensor's stored type is the lossless one for its data: BF16, F16 or F32 as in the checkpoint, F32 for FP8
/// weights (dequantised: code × scale in f32, as libglm's loader and the converter's `weight.float() * scale` do)
/// and for the tensors the converter always writes as F32. From any of these, every output type gets the same values
/// that the converter run with `--outtype` of the checkpoint's own type (f32 for FP8) gives.
final class HFCheckpointGGUF {
    /// One HF tensor that is (a slice of) a GGUF tensor.
    struct Part {
        let info: TensorInfo
        let rows: Int
        let columns: Int
        /// FP8 weights: the scales, converted to f32 (owned by `scaleStorage`).
        let fp8: glm_fp8_scales?
    }

    struct Tensor {
        let name: String
        /// ggml order (fastest first).
        let dimensions: [Int]
        /// The type the converter stores the tensor in.
        let type: GGMLType
        /// One part, or one per expert (stacked in order).
        let parts: [Part]

        var rowsPerPart: Int { parts[0].rows }
        var columns: Int { dimensions[0] }
    }

    let directory: String
    let config: ModelConfig
    let store: TensorStore
    let metadata: [GGUFWriter.Entry]
    let tensors: [Tensor]
    let hparams: GGUFQuantizer.Hyperparameters
    private var scaleStorage: [UnsafeMutablePointer<Float>] = []

    var files: [String] { store.files.map(\.path) }

    deinit { for p in scaleStorage { p.deallocate() } }

    /// True if `path` is a checkpoint directory (config.json and safetensors, no GGUF model).
    static func isCheckpoint(_ path: String) -> Bool {
        FileSystem.isDirectory(path) && FileSystem.exists(FileSystem.join(path, "config.json"))
            && ((try? GGUFModel.modelFile(in: path)) ?? nil) == nil
    }

    init(directory path: String) throws(GLMError) {
        let model = try ModelDirectory(path: path)
        directory = path
        config = model.config
        store = model.tensors
        let configJSON = try HFCheckpointGGUF.readJSONObject(FileSystem.join(path, "config.json"))
        let blockCount = config.numHiddenLayers + config.numNextnPredictLayers
        hparams = GGUFQuantizer.Hyperparameters(layerCount: blockCount, expertCount: config.nRoutedExperts,
                                                headCount: config.numAttentionHeads,
                                                headCountKV: config.numKeyValueHeads)
        var built: [Tensor] = []
        var scales: [UnsafeMutablePointer<Float>] = []
        do {
            built = try HFCheckpointGGUF.mapTensors(store: store, config: config, scales: &scales)
        } catch {
            for p in scales { p.deallocate() }
            throw error
        }
        scaleStorage = scales
        tensors = built
        metadata = try HFCheckpointGGUF.metadata(directory: path, config: config, json: configJSON,
                                                 blockCount: blockCount)
    }

    static func readJSONObject(_ path: String) throws(GLMError) -> JSONObject {
        let text = try FileSystem.readText(path)
        guard case .object(let o) = try JSONValue.parse(text) else {
            throw .format("'\(path)' is not a JSON object")
        }
        return o
    }

    // MARK: tensors

    /// HF names (inside model.layers.N.) → the converter's GGUF roles (gguf-py's tensor map for GLM4_MOE).
    static let layerRoles: [String: String] = [
        "input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        "mlp.gate": "ffn_gate_inp", "mlp.shared_experts.gate_proj": "ffn_gate_shexp",
        "mlp.shared_experts.up_proj": "ffn_up_shexp", "mlp.shared_experts.down_proj": "ffn_down_shexp",
        "eh_proj": "nextn.eh_proj", "enorm": "nextn.enorm", "hnorm": "nextn.hnorm",
        "embed_tokens": "nextn.embed_tokens", "shared_head.head": "nextn.shared_head_head",
        "shared_head.norm": "nextn.shared_head_norm",
    ]

    /// The GGUF name of a (non-expert) HF tensor, nil if the converter has no mapping for it.
    static func ggufName(_ name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]), layer >= 0,
              String(layer) == parts[2] else { return nil }
        let suffix = parts[parts.count - 1]
        let module = parts[3..<(parts.count - 1)].joined(separator: ".")
        if module == "mlp.gate" && suffix == "e_score_correction_bias" { return "blk.\(layer).exp_probs_b.bias" }
        guard suffix == "weight" || suffix == "bias", let role = layerRoles[module] else { return nil }
        return "blk.\(layer).\(role).\(suffix)"
    }

    /// The converter writes these as F32 whatever `--outtype` says: 1-D tensors, norms, the router (ffn_gate_inp)
    /// and anything not named `.weight`.
    static func convertsToF32(_ ggufName: String, dimensions: Int) -> Bool {
        dimensions <= 1 || ggufName.hasSuffix("_norm.weight") || ggufName.contains("ffn_gate_inp")
            || !ggufName.hasSuffix(".weight")
    }

    static func storedType(_ dtype: TensorDType, _ name: String, forceF32: Bool) throws(GLMError) -> GGMLType {
        switch dtype {
        case .f8e4m3: return .f32
        case .bf16: return forceF32 ? .f32 : .bf16
        case .f16: return forceF32 ? .f32 : .f16
        case .f32: return .f32
        default:
            throw .unsupported("tensor '\(name)' is \(dtype.rawValue); libglm converts BF16, F16, F32 and F8_E4M3"
                + " checkpoints to GGUF")
        }
    }

    static func mapTensors(store: TensorStore, config: ModelConfig,
                           scales: inout [UnsafeMutablePointer<Float>]) throws(GLMError) -> [Tensor] {
        let fp8 = config.fp8
        var consumed = Set<String>()
        // Tensors the converter drops: FP8 scales (folded into their weights), unused activation scales, RoPE caches.
        func dropped(_ name: String) -> Bool {
            name.hasSuffix(".rotary_emb.inv_freq") || name.hasSuffix(".input_scale")
                || name.hasSuffix(".activation_scale") || name.hasSuffix("_activation_scale")
        }

        func part(_ name: String, expectRows: Int? = nil, expectColumns: Int? = nil) throws(GLMError) -> Part {
            guard let info = store.tensor(name) else {
                throw .format("'\(store.directory)': tensor '\(name)' is missing")
            }
            let rows = info.shape.count >= 2 ? info.shape.dropLast().reduce(1, *) : 1
            let columns = info.shape.last ?? 1
            if let expectRows, let expectColumns, rows != expectRows || columns != expectColumns {
                throw .format("tensor '\(name)' has shape \(info.shape), expected [\(expectRows), \(expectColumns)]")
            }
            var scaleSet: glm_fp8_scales? = nil
            if info.dtype == .f8e4m3 {
                guard let q = fp8 else {
                    throw .unsupported("tensor '\(name)' ('\(info.file)') is F8_E4M3 but config.json has no"
                        + " quantization_config saying how it is scaled")
                }
                guard info.shape.count == 2 else {
                    throw .format("FP8 tensor '\(name)' has shape \(info.shape); FP8 weights are matrices")
                }
                let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : name
                guard !q.ignores(module: module) else {
                    throw .format("tensor '\(name)' is F8_E4M3 but quantization_config lists module '\(module)' as"
                        + " not quantised")
                }
                let scaleName = module + "." + q.scaleSuffix
                let layout = q.scaleLayout(rows: rows, columns: columns)
                guard let scale = store.tensor(scaleName) else {
                    throw .format("FP8 tensor '\(name)' has no scale tensor '\(scaleName)' (expected shape"
                        + " \(layout.shapes[0]))")
                }
                guard layout.shapes.contains(scale.shape) else {
                    throw .format("scale tensor '\(scaleName)' has shape \(scale.shape), expected \(layout.shapes[0])")
                }
                let count = scale.elementCount
                let ggml: GGMLType
                switch scale.dtype {
                case .f32: ggml = .f32
                case .bf16: ggml = .bf16
                case .f16: ggml = .f16
                default: throw .unsupported("scale tensor '\(scaleName)' is \(scale.dtype.rawValue), expected F32, BF16 or F16")
                }
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
                scales.append(buffer)
                guard let base = scale.bytes.baseAddress, glm_dequantize(Int32(ggml.rawValue), base, buffer, count) == 0 else {
                    throw .format("scale tensor '\(scaleName)' cannot be read")
                }
                let s = glm_fp8_scales(scales: buffer, block_rows: layout.blockRows, block_columns: layout.blockColumns,
                                       scale_stride: layout.stride)
                guard glm_fp8_scales_valid(s, rows, columns, count) == 1 else {
                    throw .format("scale tensor '\(scaleName)' does not cover the [\(rows), \(columns)] weight '\(name)'")
                }
                scaleSet = s
                consumed.insert(scaleName)
            }
            consumed.insert(name)
            return Part(info: info, rows: rows, columns: columns, fp8: scaleSet)
        }

        var result: [Tensor] = []
        var expertLayers = Set<Int>()
        for name in store.names {
            if consumed.contains(name) || dropped(name) { continue }
            // FP8 scales are read with their weights; one without a weight is refused below.
            if let q = fp8, name.hasSuffix("." + q.scaleSuffix) { continue }
            // Routed experts: model.layers.N.mlp.experts.E.{gate,up,down}_proj.weight, stacked per layer.
            if name.contains(".mlp.experts."), !name.contains("shared_experts") {
                let parts = name.split(separator: ".").map(String.init)
                guard parts.count == 8, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
                      parts[3] == "mlp", parts[4] == "experts", Int(parts[5]) != nil, parts[7] == "weight",
                      ["gate_proj", "up_proj", "down_proj"].contains(parts[6]) else {
                    throw .format("'\(store.directory)': cannot map tensor '\(name)' to a GGUF tensor")
                }
                if expertLayers.insert(layer).inserted {
                    let experts = config.nRoutedExperts
                    guard experts > 0 else {
                        throw .format("'\(store.directory)': tensor '\(name)' is a routed expert, but config.json"
                            + " declares n_routed_experts \(experts)")
                    }
                    for proj in ["down_proj", "gate_proj", "up_proj"] {
                        let first = "model.layers.\(layer).mlp.experts.0.\(proj).weight"
                        guard let info0 = store.tensor(first), info0.shape.count == 2 else {
                            throw .format("'\(store.directory)': tensor '\(first)' is missing (layer \(layer) has"
                                + " routed experts)")
                        }
                        var list: [Part] = []
                        for e in 0..<experts {
                            list.append(try part("model.layers.\(layer).mlp.experts.\(e).\(proj).weight",
                                                 expectRows: info0.shape[0], expectColumns: info0.shape[1]))
                        }
                        guard list.allSatisfy({ $0.info.dtype == list[0].info.dtype }) else {
                            throw .format("the routed experts of layer \(layer) (\(proj)) do not share one dtype")
                        }
                        let role = ["down_proj": "ffn_down_exps", "gate_proj": "ffn_gate_exps", "up_proj": "ffn_up_exps"][proj]!
                        let gguf = "blk.\(layer).\(role).weight"
                        let type = try storedType(list[0].info.dtype, first, forceF32: false)
                        result.append(Tensor(name: gguf, dimensions: [info0.shape[1], info0.shape[0], experts],
                                             type: type, parts: list))
                    }
                }
                continue
            }
            guard let gguf = ggufName(name) else {
                throw .format("'\(store.directory)': cannot map tensor '\(name)' to a GGUF tensor")
            }
            let p = try part(name)
            guard p.info.shape.count <= 2 else {
                throw .format("tensor '\(name)' has shape \(p.info.shape); expected a matrix or a vector")
            }
            let dims = Array(p.info.shape.reversed())
            let type = try storedType(p.info.dtype, name, forceF32: convertsToF32(gguf, dimensions: dims.count))
            result.append(Tensor(name: gguf, dimensions: dims.isEmpty ? [1] : dims, type: type, parts: [p]))
        }
        // A scale without its FP8 weight, or an expert tensor outside the stacks, is not a checkpoint libglm knows.
        for name in store.names where !consumed.contains(name) && !dropped(name) {
            if name.contains(".mlp.experts."), !name.contains("shared_experts") {
                throw .format("'\(store.directory)': tensor '\(name)' is not one of the \(config.nRoutedExperts) routed"
                    + " experts the config declares")
            }
            if let q = fp8, name.hasSuffix("." + q.scaleSuffix),
               store.tensor(String(name.dropLast(q.scaleSuffix.count)) + "weight")?.dtype != .f8e4m3 {
                throw .format("'\(store.directory)': scale tensor '\(name)' has no FP8 weight")
            }
        }
        var seen = Set<String>()
        for t in result where !seen.insert(t.name).inserted {
            throw .format("'\(store.directory)': two tensors map to the GGUF tensor '\(t.name)'")
        }
        return result
    }

    /// Memory for converted rows, reused slab after slab.
    final class Scratch {
        private(set) var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

        func reserve(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
            if buffer.count < bytes {
                buffer.deallocate()
                buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            }
            return buffer
        }

        deinit { buffer.deallocate() }
    }

    /// Rows `first ..< first + count` of `tensor` in its stored type: a pointer into the map when the checkpoint
    /// holds them as they are, else converted into `scratch`. Valid until the next call with the same scratch.
    func rows(of tensor: Tensor, _ first: Int, _ count: Int, into scratch: Scratch) throws(GLMError)
        -> UnsafeRawBufferPointer {
        let columns = tensor.columns
        let rowBytes = columns * tensor.type.bytesPerBlock
        let perPart = tensor.rowsPerPart
        guard count > 0, first >= 0, first + count <= perPart * tensor.parts.count else {
            throw GLMError(.internal, "tensor '\(tensor.name)': rows \(first)..<\(first + count) out of range")
        }
        let p0 = first / perPart
        // Within one part and no conversion: the bytes as stored.
        if (first + count - 1) / perPart == p0 {
            let part = tensor.parts[p0]
            if part.fp8 == nil, HFCheckpointGGUF.sameType(part.info.dtype, tensor.type) {
                let start = (first - p0 * perPart) * rowBytes
                return UnsafeRawBufferPointer(rebasing: part.info.bytes[start..<(start + count * rowBytes)])
            }
        }
        let out = scratch.reserve(count * rowBytes)
        try HFCheckpointGGUF.forEachPartSpan(of: tensor, first, count) { (part, local, n, done) throws(GLMError) in
            let dst = out.baseAddress! + done * rowBytes
            guard let src = part.info.bytes.baseAddress else { throw .format("tensor '\(part.info.name)' has no data") }
            if let scales = part.fp8 {
                glm_dequantize_fp8_rows(src.assumingMemoryBound(to: UInt8.self), columns, local, n, columns, scales,
                                        dst.assumingMemoryBound(to: Float.self))
            } else if HFCheckpointGGUF.sameType(part.info.dtype, tensor.type) {
                let bytes = part.info.dtype.byteSize
                dst.copyMemory(from: src + local * columns * bytes, byteCount: n * columns * bytes)
            } else {
                // BF16/F16 widened to F32 (the converter's tensors that are always F32).
                let from: GGMLType = part.info.dtype == .bf16 ? .bf16 : .f16
                if glm_dequantize(Int32(from.rawValue), src + local * columns * 2,
                                  dst.assumingMemoryBound(to: Float.self), n * columns) != 0 {
                    throw GLMError(.internal, "tensor '\(part.info.name)': converting \(from) to F32 failed")
                }
            }
        }
        return UnsafeRawBufferPointer(rebasing: out[0..<(count * rowBytes)])
    }

    /// Releases the pages of rows the quantiser is done with (they are read once).
    func release(_ tensor: Tensor, _ first: Int, _ count: Int) {
        HFCheckpointGGUF.forEachPartSpan(of: tensor, first, count) { part, local, n, _ in
            let rowBytes = part.columns * part.info.dtype.byteSize
            part.info.mapping.adviseDontNeed(offset: part.info.fileOffset + local * rowBytes, count: n * rowBytes)
        }
    }

    /// Rows `first ..< first + count` of a tensor stacked from equal parts (experts), split where parts end:
    /// `body(part, first row within the part, rows, rows done before this span)`.
    private static func forEachPartSpan<E: Error>(of tensor: Tensor, _ first: Int, _ count: Int,
                                                  _ body: (Part, Int, Int, Int) throws(E) -> Void) throws(E) {
        let perPart = tensor.rowsPerPart
        var r = first
        while r < first + count {
            let pi = r / perPart
            let local = r - pi * perPart
            let n = min(perPart - local, first + count - r)
            try body(tensor.parts[pi], local, n, r - first)
            r += n
        }
    }

    static func sameType(_ d: TensorDType, _ t: GGMLType) -> Bool {
        (d == .bf16 && t == .bf16) || (d == .f16 && t == .f16) || (d == .f32 && t == .f32)
    }

    // MARK: metadata

    /// Metadata in the converter's order, without general.file_type and general.quantization_version (the
    /// quantiser appends them last, as llama-quantize does). Not written (the converter derives them from the
    /// directory name, a model card and the parameter count by heuristics): general.basename, general.finetune,
    /// general.version, general.size_label and the model card's fields; general.name is the directory name in the
    /// converter's title form.
    static func metadata(directory: String, config: ModelConfig, json: JSONObject, blockCount: Int) throws(GLMError)
        -> [GGUFWriter.Entry] {
        let arch = GGUFModel.architecture + "."
        var m: [GGUFWriter.Entry] = [.string("general.architecture", GGUFModel.architecture),
                                     .string("general.type", "model")]
        func present(_ key: String) -> JSONValue? {
            guard let v = json[key], !v.isNull else { return nil }
            return v
        }
        // general.sampling.* from generation_config.json (gguf-py's Metadata.load).
        let generationPath = FileSystem.join(directory, "generation_config.json")
        if FileSystem.exists(generationPath), let g = try? readJSONObject(generationPath) {
            let keys: [(String, String, Bool)] = [
                ("top_k", "top_k", true), ("top_p", "top_p", false), ("min_p", "min_p", false),
                ("xtc_probability", "xtc_probability", false), ("xtc_threshold", "xtc_threshold", false),
                ("temperature", "temp", false), ("penalty_last_n", "penalty_last_n", true),
                ("repetition_penalty", "penalty_repeat", false), ("mirostat", "mirostat", true),
                ("mirostat_tau", "mirostat_tau", false), ("mirostat_eta", "mirostat_eta", false),
            ]
            for (source, key, integer) in keys {
                let value = source == "repetition_penalty" ? (g["penalty_repeat"] ?? g[source]) : g[source]
                guard let value, !value.isNull else { continue }
                if integer, let i = value.intValue {
                    m.append(.int32("general.sampling." + key, Int32(truncatingIfNeeded: i)))
                } else if let d = value.doubleValue {
                    m.append(.float32("general.sampling." + key, Float(d)))
                }
            }
        }
        m.append(.string("general.name", titleName(directory)))

        m.append(.uint32(arch + "block_count", UInt32(blockCount)))
        m.append(.uint32(arch + "context_length", UInt32(config.maxPositionEmbeddings)))
        m.append(.uint32(arch + "embedding_length", UInt32(config.hiddenSize)))
        m.append(.uint32(arch + "feed_forward_length", UInt32(config.intermediateSize)))
        m.append(.uint32(arch + "attention.head_count", UInt32(config.numAttentionHeads)))
        m.append(.uint32(arch + "attention.head_count_kv", UInt32(config.numKeyValueHeads)))
        m.append(.float32(arch + "rope.freq_base", Float(config.ropeTheta)))
        m.append(.float32(arch + "attention.layer_norm_rms_epsilon", Float(config.rmsNormEps)))
        m.append(.uint32(arch + "expert_count", UInt32(config.nRoutedExperts)))
        m.append(.uint32(arch + "expert_used_count", UInt32(config.numExpertsPerTok)))
        if present("n_group") != nil { m.append(.uint32(arch + "expert_group_count", UInt32(config.nGroup))) }
        if present("topk_group") != nil { m.append(.uint32(arch + "expert_group_used_count", UInt32(config.topkGroup))) }
        // A scoring-function field puts expert_gating_func here; Glm4MoeModel then sets it to sigmoid (2) again,
        // which gguf-py does in place.
        let scoring = ["score_function", "scoring_func", "score_func", "moe_router_activation",
                       "moe_router_activation_func", "expert_selection_fn"].contains { present($0) != nil }
        if scoring { m.append(.uint32(arch + "expert_gating_func", 2)) }
        if present("head_dim") != nil {
            m.append(.uint32(arch + "attention.key_length", UInt32(config.headDim)))
            m.append(.uint32(arch + "attention.value_length", UInt32(config.headDim)))
        }
        m.append(.uint32(arch + "rope.dimension_count", UInt32(config.rotaryDim)))
        m.append(.uint32(arch + "expert_feed_forward_length", UInt32(config.moeIntermediateSize)))
        if present("n_shared_experts") != nil { m.append(.uint32(arch + "expert_shared_count", UInt32(config.nSharedExperts))) }
        if present("first_k_dense_replace") != nil {
            m.append(.uint32(arch + "leading_dense_block_count", UInt32(config.firstKDenseReplace)))
        }
        if !scoring { m.append(.uint32(arch + "expert_gating_func", 2)) }
        if present("routed_scaling_factor") != nil {
            m.append(.float32(arch + "expert_weights_scale", Float(config.routedScalingFactor)))
        }
        if present("norm_topk_prob") != nil { m.append(.bool(arch + "expert_weights_norm", config.normTopkProb)) }
        if present("num_nextn_predict_layers") != nil {
            m.append(.uint32(arch + "nextn_predict_layers", UInt32(config.numNextnPredictLayers)))
        }
        m += try tokenizer(directory: directory, vocabSize: config.vocabSize, config: json)
        return m
    }

    /// gguf-py's Metadata.id_to_title of the directory name: '-' as spaces, all-lowercase words title-cased
    /// unless they look like a version or start with a digit.
    static func titleName(_ directory: String) -> String {
        var path = directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let words = replacing(base, "-", " ").split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        return words.map { w -> String in
            let s = String(w)
            let cased = s.unicodeScalars.filter { $0.properties.isLowercase || $0.properties.isUppercase }
            let isLower = !cased.isEmpty && cased.allSatisfy { $0.properties.isLowercase }
            let first = s.unicodeScalars.first.map { $0.properties.numericType != nil || ("0"..."9").contains(Character($0)) } ?? false
            let version = isVersion(s)
            guard isLower, !first, !version else { return s }
            // str.title(): a cased letter after an uncased character is upper-cased, the others lower-cased.
            var out = "", previousCased = false
            for c in s {
                let isCased = c.isLetter && (c.isLowercase || c.isUppercase)
                out += isCased ? (previousCased ? c.lowercased() : c.uppercased()) : String(c)
                previousCased = isCased
            }
            return out
        }.joined(separator: " ")
    }

    /// ^v\d+(\.\d+)*$
    static func isVersion(_ s: String) -> Bool {
        guard s.hasPrefix("v") else { return false }
        let groups = s.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        return !groups.isEmpty && groups.allSatisfy { !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } }
    }

    // MARK: tokenizer

    /// tokenizer.ggml.* and tokenizer.chat_template as the converter's `_set_vocab_glm` + gguf-py's SpecialVocab
    /// write them from tokenizer.json / tokenizer_config.json / config.json. None without tokenizer.json (the
    /// converter then fails; libglm writes a model without a vocabulary).
    static func tokenizer(directory: String, vocabSize: Int, config: JSONObject) throws(GLMError) -> [GGUFWriter.Entry] {
        let tokenizerPath = FileSystem.join(directory, "tokenizer.json")
        guard FileSystem.exists(tokenizerPath) else { return [] }
        let t = try readJSONObject(tokenizerPath)
        guard case .object(let model)? = t["model"], case .object(let vocab)? = model["vocab"] else {
            throw .format("'\(tokenizerPath)': no model.vocab object (libglm converts BPE tokenizers)")
        }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [Int32](repeating: 5, count: vocabSize)   // UNUSED
        for (token, idValue) in vocab {
            guard let id = idValue.intValue, id >= 0 else { throw .format("'\(tokenizerPath)': bad id for token '\(token)'") }
            guard id < vocabSize else {
                throw .format("'\(tokenizerPath)': token id \(id) is not below vocab_size \(vocabSize)")
            }
            tokens[id] = token
            types[id] = 1   // NORMAL
        }
        let added = t["added_tokens"]?.arrayValue ?? []
        var addedByContent: [String: Int] = [:]
        var addedOrder: [(String, Int)] = []
        for entry in added {
            guard let o = entry.objectValue, let id = o["id"]?.intValue, let content = o["content"]?.stringValue else {
                throw .format("'\(tokenizerPath)': an added token without id and content")
            }
            guard id >= 0, id < vocabSize else {
                throw .format("'\(tokenizerPath)': added token id \(id) is not below vocab_size \(vocabSize)")
            }
            if addedByContent[content] == nil { addedByContent[content] = id }
            addedOrder.append((content, id))
            let special = o["special"]?.boolValue ?? false
            if special || looksSpecial(content) {
                tokens[id] = content
                types[id] = 3   // CONTROL
            } else {
                tokens[id] = replacing(content, "\u{2581}", " ")
                types[id] = 4   // USER_DEFINED
            }
        }
        var m: [GGUFWriter.Entry] = [.string("tokenizer.ggml.model", "gpt2"), .string("tokenizer.ggml.pre", "glm4")]
        m.append(.strings("tokenizer.ggml.tokens", tokens.enumerated().map { $0.element ?? "[PAD\($0.offset)]" }))
        m.append(.int32s("tokenizer.ggml.token_type", types))
        if let merges = model["merges"]?.arrayValue, !merges.isEmpty {
            var list: [String] = []
            list.reserveCapacity(merges.count)
            for merge in merges {
                if let s = merge.stringValue {
                    list.append(s)
                } else if let pair = merge.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                    // Spaces inside a pair are written as U+0120, as gguf-py does.
                    list.append(replacing(a, " ", "\u{120}") + " "
                        + replacing(b, " ", "\u{120}"))
                } else {
                    throw .format("'\(tokenizerPath)': unknown merges format")
                }
            }
            m.append(.strings("tokenizer.ggml.merges", list))
        }

        // Special ids in SpecialVocab's order: tokenizer_config's <typ>_token, then config.json's <typ>_token_id,
        // then Glm's own (bos [gMASK], eot <|user|>, unk <|endoftext|>, eom <|observation|>); the first wins.
        var ids: [(String, Int)] = []
        func set(_ type: String, _ id: Int?) {
            guard let id, id >= 0, !ids.contains(where: { $0.0 == type }) else { return }
            ids.append((type, id))
        }
        var addSpecial: [(String, Bool)] = []
        func setAdd(_ type: String, _ value: Bool) {
            if !addSpecial.contains(where: { $0.0 == type }) { addSpecial.append((type, value)) }
        }
        if case .object(let post)? = t["post_processor"] {
            let processors = post["processors"]?.arrayValue?.compactMap(\.objectValue) ?? [post]
            for p in processors where p["type"]?.stringValue == "ByteLevel" {
                setAdd("bos", false)
                setAdd("eos", false)
            }
        }
        let types7 = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        var chatTemplate: String? = nil
        let tokenizerConfigPath = FileSystem.join(directory, "tokenizer_config.json")
        if FileSystem.exists(tokenizerConfigPath) {
            let tc = try readJSONObject(tokenizerConfigPath)
            if let s = tc["chat_template"]?.stringValue {
                chatTemplate = s
            } else if tc["chat_template"] == nil || tc["chat_template"]!.isNull {
                let jinja = FileSystem.join(directory, "chat_template.jinja")
                let jsonPath = FileSystem.join(directory, "chat_template.json")
                if FileSystem.exists(jinja) {
                    chatTemplate = try FileSystem.readText(jinja)
                } else if FileSystem.exists(jsonPath) {
                    chatTemplate = try readJSONObject(jsonPath)["chat_template"]?.stringValue
                }
            }
            for type in types7 {
                if let add = tc["add_\(type)_token"]?.boolValue { setAdd(type, add) }
                let entry = tc["\(type)_token"]
                let content = entry?.stringValue ?? entry?.objectValue?["content"]?.stringValue
                guard let content else { continue }
                set(type, addedOrder.first { $0.0 == content }?.1)
            }
        }
        for type in types7 { set(type, config["\(type)_token_id"]?.intValue) }
        set("bos", addedByContent["[gMASK]"])
        set("eot", addedByContent["<|user|>"])
        set("unk", addedByContent["<|endoftext|>"])
        set("eom", addedByContent["<|observation|>"])
        let keyNames = ["bos": "bos", "eos": "eos", "unk": "unknown", "sep": "seperator", "pad": "padding",
                        "mask": "mask", "eot": "eot", "eom": "eom"]   // gguf-py has no cls handler: skipped
        for (type, id) in ids {
            guard let key = keyNames[type] else { continue }
            m.append(.uint32("tokenizer.ggml.\(key)_token_id", UInt32(truncatingIfNeeded: id)))
        }
        for (type, value) in addSpecial where ["bos", "eos", "sep"].contains(type) {
            m.append(.bool("tokenizer.ggml.add_\(type)_token", value))
        }
        if let chatTemplate { m.append(.string("tokenizer.chat_template", chatTemplate)) }
        return m
    }

    /// `s` with every `old` character replaced by `new`.
    static func replacing(_ s: String, _ old: Character, _ new: Character) -> String {
        String(s.map { $0 == old ? new : $0 })
    }

    /// The converter's does_token_look_special.
    static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) { return true }
        if t.hasPrefix("<|") && t.hasSuffix("|>") { return true }
        if t.hasPrefix("<\u{FF5C}") && t.hasSuffix("\u{FF5C}>") { return true }
        return t.hasPrefix("<unused") && t.hasSuffix(">")
    }
}
