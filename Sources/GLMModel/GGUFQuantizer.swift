import CGLMKernels
import GLMFormats
import GLMSupport
import Glibc
import Synchronization

/// A llama.cpp file type ("Q4_K_M", ...): the `general.file_type` number it writes and the tensor type most
/// weights get; the per-tensor recipe (GGUFQuantizer.plan) moves some tensors up or down from that type.
public struct GGUFFileType: Equatable, Sendable {
    public let name: String
    /// llama.h's llama_ftype.
    public let id: UInt32
    public let defaultType: GGMLType

    /// The file types libglm writes, under llama-quantize's names (Q3_K, Q4_K and Q5_K are its aliases of the _M
    /// mixes). Matching is case-insensitive.
    public static let all: [GGUFFileType] = {
        let table: [(String, UInt32, UInt32)] = [
            ("Q4_0", 2, 2), ("Q4_1", 3, 3), ("Q5_0", 8, 6), ("Q5_1", 9, 7), ("Q8_0", 7, 8),
            ("Q2_K", 10, 10), ("Q3_K_S", 11, 11), ("Q3_K_M", 12, 11), ("Q3_K_L", 13, 11),
            ("Q4_K_S", 14, 12), ("Q4_K_M", 15, 12), ("Q5_K_S", 16, 13), ("Q5_K_M", 17, 13), ("Q6_K", 18, 14),
            ("F16", 1, 1), ("BF16", 32, 30), ("F32", 0, 0),
        ]
        return table.compactMap { name, id, type in
            GGMLType.known[type].map { GGUFFileType(name: name, id: id, defaultType: $0) }
        }
    }()

    static let aliases = ["Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"]

    public static func named(_ given: String) -> GGUFFileType? {
        let upper = given.uppercased()
        let name = aliases[upper] ?? upper
        return all.first { $0.name == name }
    }

    public static var names: String { all.map(\.name).joined(separator: ", ") }
}

/// GGUF → GGUF quantisation with llama-quantize's recipes: without an importance matrix the output is
/// byte-identical to `llama-quantize SRC DST TYPE` (same metadata, tensor order, per-tensor types, ggml's reference
/// quantisers in CGLMKernels/quantize.c, padding). Streams: the header is written first (every tensor's type is
/// decided before any data), then each tensor is converted in slabs of rows and written, so memory stays at a
/// few slabs whatever the model's size. A Hugging Face checkpoint directory is a source too (HFCheckpointGGUF: the
/// GGUF llama.cpp's convert_hf_to_gguf.py would write from it, produced tensor by tensor and never stored).
/// docs/MODEL.md §2.6 (writing).
public enum GGUFQuantizer {
    public struct Options {
        public var fileType: GGUFFileType
        public var threads: Int
        /// Quantise tensors that are already block-quantised (dequantised first; quality suffers). llama-quantize
        /// refuses without --allow-requantize, and so does this.
        public var allowRequantize: Bool
        /// Called after every slab with (bytes of tensor data written, total bytes, tensor name); false cancels.
        public var progress: ((Int, Int, String) -> Bool)?

        public init(fileType: GGUFFileType, threads: Int = 0, allowRequantize: Bool = false,
                    progress: ((Int, Int, String) -> Bool)? = nil) {
            self.fileType = fileType
            self.threads = threads
            self.allowRequantize = allowRequantize
            self.progress = progress
        }
    }

    /// What a recipe needs to know about the model (llama.cpp's hparams of the same names).
    public struct Hyperparameters: Sendable {
        public var layerCount: Int     // block_count, the MTP block included (n_layer_all)
        public var expertCount: Int
        public var headCount: Int
        public var headCountKV: Int

        public init(layerCount: Int, expertCount: Int, headCount: Int, headCountKV: Int) {
            self.layerCount = layerCount
            self.expertCount = expertCount
            self.headCount = headCount
            self.headCountKV = headCountKV
        }

        var gqa: Int { headCountKV > 0 ? headCount / headCountKV : 0 }
    }

    public struct PlannedTensor: Sendable {
        public let name: String
        public let dimensions: [Int]
        public let source: GGMLType
        public let target: GGMLType
    }

    // MARK: the recipe (llama.cpp src/llama-quant.cpp: llama_tensor_get_type and its helpers)

    enum Category { case output, tokenEmbedding, attentionQKV, attentionKVB, attentionV, attentionK, attentionQ,
                    attentionOutput, ffnUp, ffnGate, ffnDown, other }

    static func category(_ name: String) -> Category {
        if name == "output.weight" { return .output }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" { return .tokenEmbedding }
        if name.contains("attn_qkv.weight") { return .attentionQKV }
        if name.contains("attn_kv_b.weight") { return .attentionKVB }
        if name.contains("attn_v.weight") { return .attentionV }
        if name.contains("attn_k.weight") { return .attentionK }
        if name.contains("attn_q.weight") { return .attentionQ }
        if name.contains("attn_output.weight") { return .attentionOutput }
        if name.contains("ffn_up") { return .ffnUp }
        if name.contains("ffn_gate") { return .ffnGate }
        if name.contains("ffn_down") { return .ffnDown }
        return .other
    }

    static func isAttentionVLike(_ c: Category) -> Bool { c == .attentionV || c == .attentionQKV || c == .attentionKVB }

    /// Substrings of tensors llama-quantize never quantises (small, or precision-critical), for the architectures
    /// whose names can occur in a GGUF; GLM-4 MoE's own exclusions are the norms, ffn_gate_inp and the 1-D tensors.
    static let keptAsIs = [
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
        "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
        ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
        "a.rvq.codebook", "mm.a.code_embd",
    ]

    /// ggml_n_dims: dimensions up to the last one above 1.
    static func significantDimensions(_ d: [Int]) -> Int {
        var n = d.count
        while n > 1 && d[n - 1] == 1 { n -= 1 }
        return n
    }

    static func allowsQuantization(_ name: String, dimensions: [Int]) -> Bool {
        guard significantDimensions(dimensions) >= 2, name.hasSuffix("weight") else { return false }
        if name == "position_embd.weight" || name == "token_types.weight" { return false }
        return !keptAsIs.contains { name.contains($0) }
    }

    /// The layer number of "blk.N.…" as sscanf("blk.%d.") reads it (optional sign, then digits), nil if none.
    static func parseLayer(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        var bytes = name.utf8.dropFirst(4)[...]
        var negative = false
        if let c = bytes.first, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
            negative = c == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var value = 0, digits = 0
        for c in bytes {
            guard c >= 48 && c <= 57, digits < 9 else { break }
            value = value * 10 + Int(c - 48)
            digits += 1
        }
        return digits == 0 ? nil : (negative ? -value : value)
    }

    static func layerNumber(_ name: String) -> Int { parseLayer(name) ?? -1 }

    /// llama.cpp's tensor order (its loader's weights map): by layer number (tensors outside blk.N first), then by
    /// name, bytewise.
    static func precedes(_ a: String, _ b: String) -> Bool {
        let la = layerNumber(a), lb = layerNumber(b)
        if la != lb { return la < lb }
        return Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
    }

    static func isBlockQuantized(_ t: GGMLType) -> Bool { t.blockSize > 1 }

    static func type(_ id: UInt32) -> GGMLType {
        GGMLType.known[id] ?? GGMLType.f16   // ids used below are all in the table
    }

    static let q4_0: UInt32 = 2, q4_1: UInt32 = 3, q5_0: UInt32 = 6, q5_1: UInt32 = 7, q8_0: UInt32 = 8
    static let q2_k: UInt32 = 10, q3_k: UInt32 = 11, q4_k: UInt32 = 12, q5_k: UInt32 = 13, q6_k: UInt32 = 14

    /// Every tensor's target type, in llama-quantize's order, as its recipe for `fileType` assigns them.
    /// `tensors` are (name, dimensions, type) in any order.
    public static func plan(_ tensors: [(String, [Int], GGMLType)], fileType: GGUFFileType,
                            hparams: Hyperparameters) throws(GLMError) -> [PlannedTensor] {
        let ordered = tensors.sorted { precedes($0.0, $1.0) }
        let ftype = fileType.name
        let attentionVCount = ordered.filter { isAttentionVLike(category($0.0)) }.count
        let tied = !ordered.contains { $0.0 == "output.weight" }
        let layers = hparams.layerCount
        var iAttentionV = 0, iFFNDown = 0, iFFNGate = 0, iFFNUp = 0

        func useMoreBits(_ i: Int, _ n: Int) -> Bool {
            // C integer division truncates toward zero; i and n are never negative here.
            i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
        }
        func layer(_ counter: Int, _ name: String) throws(GLMError) -> Int {
            guard hparams.expertCount > 1 else { return counter }
            // Experts are not stored in layer order in every model, so llama.cpp reads the layer from the name.
            guard let i = parseLayer(name) else {
                throw .format("failed to determine the layer of tensor '\(name)'")
            }
            guard i >= 0, i < layers else {
                throw .format("tensor '\(name)' is in layer \(i), outside the model's \(layers) layers")
            }
            return i
        }

        // llama_tensor_get_type_impl for the non-IQ file types.
        func recipe(_ name: String, _ dims: [Int], _ start: UInt32, _ cat: Category) throws(GLMError) -> UInt32 {
            var t = start
            if cat == .output || (tied && cat == .tokenEmbedding) {
                if dims[0] % type(t).blockSize != 0 { t = q8_0 } else if t != q8_0 { t = q6_k }
            } else if cat == .tokenEmbedding {
                // only the IQ file types change it
            } else if isAttentionVLike(cat) {
                switch ftype {
                case "Q2_K": t = hparams.gqa >= 4 ? q4_k : q3_k
                case "Q3_K_M": t = iAttentionV < 2 ? q5_k : q4_k
                case "Q3_K_L": t = q5_k
                case "Q4_K_M", "Q5_K_M": if useMoreBits(iAttentionV, attentionVCount) { t = q6_k }
                case "Q4_K_S": if iAttentionV < 4 { t = q5_k }
                default: break
                }
                if hparams.expertCount == 8 { t = q8_0 }
                iAttentionV += 1
            } else if cat == .attentionK {
                if hparams.expertCount == 8 { t = q8_0 }
            } else if cat == .attentionQ {
                // only the IQ file types change it
            } else if cat == .ffnDown {
                let i = try layer(iFFNDown, name)
                let n = layers
                switch ftype {
                case "Q2_K": t = q3_k
                case "Q3_K_M": t = i < n / 16 ? q5_k : q4_k
                case "Q3_K_L": t = q5_k
                case "Q4_K_M": if useMoreBits(i, n) { t = q6_k }
                case "Q5_K_M": if useMoreBits(i, n) { t = q6_k }
                case "Q4_K_S": if i < n / 8 { t = q5_k }
                default: break
                }
                iFFNDown += 1
            } else if cat == .attentionOutput {
                if hparams.expertCount == 8 {
                    if ["Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M"].contains(ftype) { t = q5_k }
                } else {
                    switch ftype {
                    case "Q2_K": t = q3_k
                    case "Q3_K_M": t = q4_k
                    case "Q3_K_L": t = q5_k
                    default: break
                    }
                }
            } else if cat == .ffnGate {
                _ = try layer(iFFNGate, name)
                iFFNGate += 1
            } else if cat == .ffnUp {
                _ = try layer(iFFNUp, name)
                iFFNUp += 1
            }
            return t
        }

        // tensor_type_fallback: a row length the type's block does not divide.
        func fallback(_ dims: [Int], _ start: UInt32) -> UInt32 {
            let columns = dims[0]
            guard columns % type(start).blockSize != 0 else { return start }
            var t = start
            switch start {
            case q2_k, q3_k: t = q4_0
            case q4_k: t = q5_0
            case q5_k: t = q5_1
            case q6_k: t = q8_0
            default: break
            }
            if columns % type(t).blockSize != 0 { t = GGMLType.f16.rawValue }
            return t
        }

        var result: [PlannedTensor] = []
        result.reserveCapacity(ordered.count)
        for (name, dims, source) in ordered {
            guard !dims.isEmpty else { throw .format("GGUF tensor '\(name)' has no dimensions") }
            var target = source
            if allowsQuantization(name, dimensions: dims) {
                var t = fileType.defaultType.rawValue
                if isBlockQuantized(fileType.defaultType) {
                    t = try recipe(name, dims, t, category(name))
                    t = fallback(dims, t)
                }
                target = type(t)
            }
            result.append(PlannedTensor(name: name, dimensions: dims, source: source, target: target))
        }
        return result
    }

    // MARK: the file

    /// Quantises the model at `source` into the single file `destination`: a GGUF model (one file or any part of a
    /// split set), or a Hugging Face checkpoint directory (HFCheckpointGGUF: converted tensor by tensor as llama.cpp's
    /// convert_hf_to_gguf.py would, then quantised the same way). On failure the partial destination is removed.
    public static func quantize(source: String, destination: String, options: Options) throws(GLMError) {
        if HFCheckpointGGUF.isCheckpoint(source) {
            try quantizeCheckpoint(source: source, destination: destination, options: options)
            return
        }
        let model = try GGUFModel(path: source)
        let head = model.files[0]
        try refuseOverwritingSource(model.files.map(\.path), destination)

        var entries: [(String, [Int], GGMLType)] = []
        var location: [String: (GGUFTensorInfo, GGUFFile)] = [:]
        for f in model.files {
            for t in f.tensors {
                guard let type = t.type else {
                    throw .unsupported("'\(f.path)': GGUF tensor '\(t.name)' has ggml type \(t.typeID), which libglm cannot read")
                }
                entries.append((t.name, t.dimensions, type))
                location[t.name] = (t, f)
            }
        }
        let arch = try head.string(for: "general.architecture") ?? GGUFModel.architecture
        func first(_ key: String) throws(GLMError) -> Int {
            // A per-layer array in some models: llama.cpp's n_gqa() looks at layer 0.
            if let a = head.value(for: key)?.arrayValue { return try a.integers().first ?? 0 }
            return try head.integer(for: key) ?? 0
        }
        let hparams = Hyperparameters(
            layerCount: try head.integer(for: arch + ".block_count") ?? 0,
            expertCount: try head.integer(for: arch + ".expert_count") ?? 0,
            headCount: try first(arch + ".attention.head_count"),
            headCountKV: try first(arch + ".attention.head_count_kv"))

        // Metadata: the source's entries verbatim (the first part's, as llama.cpp's loader keeps), without the
        // split keys; write() appends general.quantization_version and general.file_type.
        var metadata: [GGUFWriter.Entry] = []
        for (key, range) in zip(head.keys, head.keyRanges) where !replacedKeys.contains(key) {
            let bytes = try head.file.slice(offset: range.lowerBound, count: range.count)
            metadata.append(GGUFWriter.Entry(key: key, bytes: [UInt8](bytes)))
        }
        // The alignment the copied metadata declares (general.alignment, else GGUF's 32), so the file is consistent.
        try write(entries, hparams: hparams, metadata: metadata, alignment: head.alignment, destination: destination,
                  options: options) { (p) throws(GLMError) -> TensorRows in
            guard let (info, file) = location[p.name] else {
                throw GLMError(.internal, "GGUF tensor '\(p.name)' vanished")
            }
            let data = try file.data(of: info)
            let start = try file.byteRange(of: info).lowerBound
            let rowBytes = p.dimensions[0] / p.source.blockSize * p.source.bytesPerBlock
            return TensorRows(read: { (r, n) throws(GLMError) in
                UnsafeRawBufferPointer(rebasing: data[(r * rowBytes)..<((r + n) * rowBytes)])
            }, release: { r, n in file.file.adviseDontNeed(offset: start + r * rowBytes, count: n * rowBytes) })
        }
    }

    /// A Hugging Face checkpoint directory: the converter's metadata and tensors (HFCheckpointGGUF), rows converted
    /// from the safetensors as they are written. The converter's file has the default alignment.
    static func quantizeCheckpoint(source: String, destination: String, options: Options) throws(GLMError) {
        let checkpoint = try HFCheckpointGGUF(directory: source)
        try refuseOverwritingSource(checkpoint.files, destination)
        var byName: [String: HFCheckpointGGUF.Tensor] = [:]
        for t in checkpoint.tensors { byName[t.name] = t }
        try write(checkpoint.tensors.map { ($0.name, $0.dimensions, $0.type) }, hparams: checkpoint.hparams,
                  metadata: checkpoint.metadata, alignment: GGUFFile.defaultAlignment, destination: destination,
                  options: options) { (p) throws(GLMError) -> TensorRows in
            guard let tensor = byName[p.name] else { throw GLMError(.internal, "tensor '\(p.name)' vanished") }
            let scratch = HFCheckpointGGUF.Scratch()
            return TensorRows(read: { (r, n) throws(GLMError) in
                try checkpoint.rows(of: tensor, r, n, into: scratch)
            }, release: { r, n in checkpoint.release(tensor, r, n) })
        }
    }

    static let replacedKeys: Set<String> = ["general.quantization_version", "general.file_type", "split.no",
                                            "split.count", "split.tensors.count"]

    /// A source tensor's rows in its own type: `read(first, count)` (valid until the next call), and `release` for
    /// rows the quantiser is done with.
    struct TensorRows {
        let read: (Int, Int) throws(GLMError) -> UnsafeRawBufferPointer
        let release: (Int, Int) -> Void
    }

    /// Plans every tensor, checks the conversions, writes the header (metadata + general.quantization_version and
    /// general.file_type, re-added last as ggml's setters do) and then each tensor from `rows`.
    static func write(_ entries: [(String, [Int], GGMLType)], hparams: Hyperparameters, metadata base: [GGUFWriter.Entry],
                      alignment: Int, destination: String, options: Options,
                      rows: (PlannedTensor) throws(GLMError) -> TensorRows) throws(GLMError) {
        let planned = try plan(entries, fileType: options.fileType, hparams: hparams)
        for p in planned where p.source != p.target {
            guard glm_ggml_dequantizable(Int32(p.source.rawValue)) == 1 else {
                throw .unsupported("GGUF tensor '\(p.name)' is \(p.source), which libglm cannot convert")
            }
            if isBlockQuantized(p.source) && !options.allowRequantize {
                throw .invalidArgument("GGUF tensor '\(p.name)' is already quantised (\(p.source)); requantising to \(p.target) is disabled (allow_requantize)")
            }
            guard glm_ggml_quantizable(Int32(p.target.rawValue)) == 1 else {
                throw .unsupported("GGUF tensor '\(p.name)': libglm cannot write \(p.target)")
            }
        }
        var metadata = base
        metadata.append(.uint32("general.quantization_version", 2))   // GGML_QNT_VERSION
        metadata.append(.uint32("general.file_type", options.fileType.id))

        let writer = try GGUFWriter(path: destination, metadata: metadata,
                                    tensors: planned.map { GGUFWriter.Tensor(name: $0.name, dimensions: $0.dimensions, type: $0.target) },
                                    alignment: alignment)
        do {
            let total = writer.tensors.reduce(0) { $0 + $1.byteCount }
            var done = 0
            let threads = options.threads > 0 ? options.threads : ThreadPool.defaultThreadCount
            for p in planned {
                let source = try rows(p)
                try convert(p, source: source, writer: writer, threads: threads) { (bytes) throws(GLMError) in
                    done += bytes
                    if let progress = options.progress, !progress(done, total, p.name) {
                        throw GLMError(.cancelled, "quantisation cancelled by the progress callback (at tensor '\(p.name)')")
                    }
                }
                try writer.finishTensor()
            }
            try writer.close()
        } catch {
            // Everything above throws GLMError only (typed throws): the partial file goes, the error goes out.
            writer.abandon()
            throw error
        }
    }

    /// Writing over a file that is mapped as the source would fault when the pages under the map vanish.
    static func refuseOverwritingSource(_ sources: [String], _ destination: String) throws(GLMError) {
        var d = stat()
        guard stat(destination, &d) == 0 else { return }
        for s in sources {
            var st = stat()
            if stat(s, &st) == 0 && st.st_dev == d.st_dev && st.st_ino == d.st_ino {
                throw .invalidArgument("the destination '\(destination)' is the source file '\(s)'")
            }
        }
    }

    /// Bytes of f32 rows (plus their output) one slab may take: bounds memory for any tensor size.
    static let slabBytes = 64 << 20

    /// Converts (or copies) one tensor in slabs of rows read from `source` (rows it is finished with are
    /// released from memory); `wrote` is told how many bytes went out.
    static func convert(_ p: PlannedTensor, source: TensorRows, writer: GGUFWriter, threads: Int,
                        wrote: (Int) throws(GLMError) -> Void) throws(GLMError) {
        let columns = p.dimensions[0]
        let rows = p.dimensions.dropFirst().reduce(1, *)
        let sourceRow = columns / p.source.blockSize * p.source.bytesPerBlock
        let targetRow = columns / p.target.blockSize * p.target.bytesPerBlock
        let rowsPerSlab = max(1, min(rows, slabBytes / max(1, columns * 4 + targetRow)))
        if p.source == p.target {
            // Copied as stored, in slabs so the progress callback is called.
            var r = 0
            while r < rows {
                let n = min(rowsPerSlab, rows - r)
                try writer.write(try source.read(r, n))
                source.release(r, n)
                try wrote(n * sourceRow)
                r += n
            }
            return
        }
        let sourceType = Int32(p.source.rawValue), targetType = Int32(p.target.rawValue)
        var floats = [Float](repeating: 0, count: rowsPerSlab * columns)
        var out = [UInt8](repeating: 0, count: rowsPerSlab * targetRow)
        var r = 0
        while r < rows {
            let n = min(rowsPerSlab, rows - r)
            let data = try source.read(r, n)
            guard data.count == n * sourceRow, let src = data.baseAddress else {
                throw GLMError(.internal, "tensor '\(p.name)': rows \(r)..<\(r + n) came back with \(data.count) bytes")
            }
            let failed = Atomic(false)
            floats.withUnsafeMutableBufferPointer { f in
                out.withUnsafeMutableBytes { o in
                    let fBase = f.baseAddress!, oBase = o.baseAddress!
                    // Rows are independent (each block only sees its own elements), so any split gives ggml's bytes.
                    ThreadPool.shared.parallelFor(n, threads: min(threads, n)) { i in
                        let x = fBase + i * columns
                        if glm_dequantize(sourceType, src + i * sourceRow, x, columns) != 0
                            || glm_quantize_blocks(targetType, x, oBase + i * targetRow, columns) != 0 {
                            failed.store(true, ordering: .relaxed)
                        }
                    }
                }
            }
            if failed.load(ordering: .relaxed) {
                throw GLMError(.internal, "GGUF tensor '\(p.name)': converting \(p.source) to \(p.target) failed")
            }
            var failure: GLMError?
            out.withUnsafeBytes { o in
                do { try writer.write(UnsafeRawBufferPointer(rebasing: o[0..<(n * targetRow)])) } catch let e as GLMError { failure = e } catch { failure = GLMError(.internal, "\(error)") }
            }
            if let failure { throw failure }
            source.release(r, n)
            try wrote(n * targetRow)
            r += n
        }
    }
}
