import CGLMKernels
import Glibc
import GLMFormats
import GLMJSON
import GLMNumerics
import GLMSupport
import Testing
@testable import GLMModel

/// FP8 E4M3 checkpoints (docs/MODEL.md §4) made by tools/make_fp8_models.py: one tiny model quantised per channel,
/// per 128×128 block (partial edge blocks), per tensor (with an ignore regex), and DeepSeek-style; references are
/// transformers fp32 logits on the dequantised weights. The conversion itself is checked bit for bit against
/// PyTorch's float8_e4m3fn → float32 for all 256 codes, through every kernel.
@Suite struct FP8ModelTests {
    static let root = ReferenceModel.root + "/fp8"
    static let layouts = ["channel", "block", "tensor", "deepseek"]

    struct Reference {
        let tokens: [Int32]
        let logits: [Float]

        init(_ layout: String) throws {
            let file = try SafetensorsFile(path: FP8ModelTests.root + "/\(layout)/reference.safetensors")
            guard let t = file.tensors["tokens"], let l = file.tensors["logits"] else {
                throw GLMError.format("\(layout): reference tensors missing")
            }
            tokens = Array(t.bytes.bindMemory(to: Int32.self))
            logits = Array(l.bytes.bindMemory(to: Float.self))
        }
    }

    /// Logits of every token, evaluated in chunks of the given sizes (8 = the GEMM path, 1 = decode, 2-3 = the
    /// row kernel's few-token blocks).
    func logits(_ model: Model, _ tokens: [Int32], chunks: [Int]) throws -> [Float] {
        let session = try Session(model: model, contextLength: 16)
        var out: [Float] = [], start = 0, i = 0
        while start < tokens.count {
            let n = min(chunks[i % chunks.count], tokens.count - start)
            out += try session.evaluate(tokens: Array(tokens[start..<(start + n)]), logits: .all)
            start += n
            i += 1
        }
        return out
    }

    @Test(arguments: layouts)
    func logitsMatchTransformersOnDequantisedWeights(layout: String) throws {
        let reference = try Reference(layout)
        for path in KernelPath.available() {
            let model = try Model.load(directory: FP8ModelTests.root + "/" + layout, kernels: path)
            #expect(model.weightType == "float8_e4m3fn")
            #expect((model.parametersByType["F8_E4M3"] ?? 0) > (model.parametersByType["BF16"] ?? 0))
            for chunks in [[8], [1], [3, 2]] {
                let got = try logits(model, reference.tokens, chunks: chunks)
                #expect(got.count == reference.logits.count)
                let error = relativeError(got, reference.logits)
                #expect(error < 1e-4, "\(layout) \(path) chunks \(chunks): max error \(error) of scale")
            }
        }
    }

    @Test func infoReportsFP8() throws {
        let model = try Model.load(directory: FP8ModelTests.root + "/block")
        let info = model.info
        #expect(info["dtype"] == .string("float8_e4m3fn"))
        #expect(info["quantization"]?["F8_E4M3"]?.intValue == model.parametersByType["F8_E4M3"])
        #expect(info["fp8"]?["method"] == .string("compressed-tensors"))
        #expect(info["fp8"]?["strategy"] == .string("block 128x128"))
        // One byte per FP8 weight: the decode traffic counts them as such.
        let deepseek = try Model.load(directory: FP8ModelTests.root + "/deepseek")
        #expect(deepseek.info["fp8"]?["method"] == .string("fp8"))
        #expect(deepseek.weightBytesPerDecodedToken == model.weightBytesPerDecodedToken)
    }

    @Test func ignoredModulesStayBF16() throws {
        // The tensor layout's ignore list keeps layer 1's shared expert (regex) and the routers in BF16.
        let model = try Model.load(directory: FP8ModelTests.root + "/tensor")
        guard case .mixtureOfExperts(let moe) = model.layers[1].feedForward, let shared = moe.shared else {
            Issue.record("layer 1 is not a MoE layer with a shared expert")
            return
        }
        if case .bf16 = shared.gate.storage {} else { Issue.record("shared expert is not BF16") }
        if case .bf16 = moe.router.storage {} else { Issue.record("router is not BF16") }
        if case .fp8 = moe.experts[0].gate.storage {} else { Issue.record("routed expert is not FP8") }
    }

    // MARK: the conversion, bit for bit

    /// PyTorch's float8_e4m3fn → float32 of every code.
    static func torchValues() throws -> [Float] {
        let file = try SafetensorsFile(path: root + "/e4m3_codes.safetensors")
        guard let codes = file.tensors["codes"], let values = file.tensors["values"] else {
            throw GLMError.format("e4m3_codes.safetensors: tensors missing")
        }
        #expect(Array(codes.bytes) == (0...255).map { UInt8($0) })
        return Array(values.bytes.bindMemory(to: Float.self))
    }

    static func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

    @Test func allCodesConvertExactly() throws {
        let expected = try FP8ModelTests.torchValues()
        #expect(expected.count == 256)
        #expect(expected[0x7F].isNaN && expected[0xFF].isNaN && expected[0x7E] == 448 && expected[0x01] == 0x1p-9)
        // 256 + 5 codes: the vector loop and the scalar tail.
        let codes = (0..<261).map { UInt8($0 % 256) }
        var out = [Float](repeating: 0, count: codes.count)
        glm_fp8_e4m3_to_f32(codes, &out, codes.count)
        for (i, code) in codes.enumerated() {
            #expect(FP8ModelTests.same(out[i], expected[Int(code)]), "code \(code): \(out[i]) vs \(expected[Int(code)])")
        }
    }

    /// 256 rows × `columns`: row r holds code r at column r % columns, code 0 elsewhere. With one-hot inputs every
    /// product is the element itself, so the kernels' outputs must equal torch's value × scale exactly.
    @Test(arguments: [16, 21, 300, 640])
    func allCodesThroughEveryKernel(columns: Int) throws {
        let expected = try FP8ModelTests.torchValues()
        let rows = 256
        var w = [UInt8](repeating: 0, count: rows * columns)
        for r in 0..<rows { w[r * columns + r % columns] = UInt8(r) }
        // Per-block scales with partial edge blocks (blocks of 24 rows × 16 columns); plus channel and tensor.
        let blockRows = 24, blockColumns = 16
        let scaleRows = (rows + blockRows - 1) / blockRows, scaleColumns = (columns + blockColumns - 1) / blockColumns
        let blockScales = (0..<(scaleRows * scaleColumns)).map { Float(0.37) * Float($0 % 7 + 1) }
        let channelScales = (0..<rows).map { Float(1.0 / 3.0) * Float($0 % 5 + 1) }
        let tensorScale: [Float] = [0.013]
        // Blocks 32 columns wide: the decode kernel's 32-code phases run per block (16-wide blocks take its
        // generic loop).
        let scaleColumns32 = (columns + 31) / 32
        let blockScales32 = (0..<(scaleRows * scaleColumns32)).map { Float(0.29) * Float($0 % 5 + 1) }
        let cases: [([Float], Int, Int, Int)] = [(blockScales, blockRows, blockColumns, scaleColumns),
                                                 (blockScales32, blockRows, 32, scaleColumns32),
                                                 (channelScales, 1, columns, 1), (tensorScale, rows, columns, 1)]
        for (scaleValues, br, bc, stride) in cases {
            scaleValues.withUnsafeBufferPointer { sp in
                let s = glm_fp8_scales(scales: sp.baseAddress, block_rows: br, block_columns: bc, scale_stride: stride)
                #expect(glm_fp8_scales_valid(s, rows, columns, sp.count) == 1)
                #expect(glm_fp8_scales_valid(s, rows + br, columns, sp.count) == 0)
                func want(_ r: Int) -> Float {
                    expected[r] * sp[(r / br) * stride + (r % columns) / bc]
                }
                // Dequantised rows (embedding lookups, the quantize tool): every element, from a row offset.
                var dq = [Float](repeating: 0, count: 200 * columns)
                glm_dequantize_fp8_rows(w, columns, 56, 200, columns, s, &dq)
                for r in 56..<256 {
                    for c in 0..<columns {
                        let value = dq[(r - 56) * columns + c]
                        let target = c == r % columns ? want(r) : 0 * sp[(r / br) * stride + c / bc]
                        #expect(FP8ModelTests.same(value, target), "row \(r) col \(c)")
                    }
                }
                // Row kernel (1, 2, 3 tokens) and the GEMM (8 tokens): token t's input is one-hot at column
                // (t·7) % columns, so output (t, r) is element (r, that column).
                // Both builds of the row kernel (avx512 1 falls back to the AVX2 build on a CPU without AVX-512).
                for (tokens, avx512) in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1), (8, 0)] as [(Int, Int32)] {
                    var x = [Float](repeating: 0, count: tokens * columns)
                    for t in 0..<tokens { x[t * columns + (t * 7) % columns] = 1 }
                    var y = [Float](repeating: -1, count: tokens * rows)
                    if tokens < 8 {
                        glm_matmul_rows_fp8(w, columns, 0, rows, columns, s, x, columns, tokens, &y, rows, avx512)
                    } else {
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: WeightMatrix.packedScratchCount)
                        defer { scratch.deallocate() }
                        glm_gemm_fp8(w, columns, 0, rows, columns, s, x, columns, tokens, &y, rows, scratch, 0)
                    }
                    for t in 0..<tokens {
                        let column = (t * 7) % columns
                        for r in 0..<rows {
                            let element = r % columns == column
                                ? want(r) : 0 * sp[(r / br) * stride + column / bc]
                            // A NaN element anywhere in the row makes the whole dot product NaN; a sum of zeros
                            // is +0 whatever the sign of the one non-zero-weighted element.
                            let target: Float = (r == 0x7F || r == 0xFF) ? .nan : element
                            let got = y[t * rows + r]
                            #expect(FP8ModelTests.same(got, target) || (target == 0 && got == 0),
                                    "tokens \(tokens) t \(t) row \(r): \(y[t * rows + r]) vs \(target)")
                        }
                    }
                }
            }
        }
    }

    /// Speculative verification runs 2–7 tokens through the row kernel and must reproduce one-token decode bit for
    /// bit: every token count takes the same operations per output (fp8.c), with 32-code phases (channel, tensor and
    /// 32/128-wide block scales) and without (16-wide blocks), with and without a column tail; and the AVX-512 build
    /// (fp8_avx512.c) must give the AVX2 build's bits.
    @Test func fewTokenRowsEqualOneTokenRowsBitForBit() {
        var state: UInt64 = 0x2545F4914F6CDD1D
        func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        for columns in [5, 70, 300, 640] {
            let rows = 11
            // Random codes without the NaN codes (a NaN row is NaN whatever the order).
            let w: [UInt8] = (0..<(rows * columns)).map { _ in
                let b = UInt8(truncatingIfNeeded: next())
                return b & 0x7F == 0x7F ? b ^ 1 : b
            }
            for blockColumns in [columns, 16, 32, 128] {
                let scaleColumns = (columns + blockColumns - 1) / blockColumns
                let scaleRows = (rows + 3) / 4
                let scales = (0..<(scaleRows * scaleColumns)).map { Float(0.0125) * Float($0 % 9 + 1) }
                scales.withUnsafeBufferPointer { sp in
                    let s = glm_fp8_scales(scales: sp.baseAddress, block_rows: 4, block_columns: blockColumns,
                                           scale_stride: scaleColumns)
                    for tokens in 2...7 {
                        let x: [Float] = (0..<(tokens * columns)).map { _ in Float(Int(next() % 2001) - 1000) / 997 }
                        var together = [Float](repeating: .nan, count: tokens * rows)
                        var alone = [Float](repeating: .nan, count: tokens * rows)
                        // Together on one build, alone on the other (AVX2 / AVX-512 where the CPU has it), both
                        // ways round: the bits must not depend on the token count nor on the build.
                        let together512: Int32 = tokens % 2 == 0 ? 1 : 0
                        glm_matmul_rows_fp8(w, columns, 0, rows, columns, s, x, columns, tokens, &together, rows,
                                            together512)
                        for t in 0..<tokens {
                            x.withUnsafeBufferPointer { xp in
                                alone.withUnsafeMutableBufferPointer { yp in
                                    glm_matmul_rows_fp8(w, columns, 0, rows, columns, s, xp.baseAddress! + t * columns,
                                                        columns, 1, yp.baseAddress! + t * rows, rows, 1 - together512)
                                }
                            }
                        }
                        #expect(together.map(\.bitPattern) == alone.map(\.bitPattern),
                                "columns \(columns) blocks \(blockColumns) tokens \(tokens)")
                        #expect(together.allSatisfy { $0.isFinite })
                    }
                }
            }
        }
    }

    // MARK: hostile checkpoints

    func code(_ body: () throws -> Void) -> GLMError? {
        do { try body() } catch let error as GLMError { return error } catch { return GLMError(.internal, "\(error)") }
        return nil
    }

    /// Copies fp8/`layout` to a temporary directory with its config.json (as a JSON object) and tensors edited, and
    /// returns the load error.
    func loadError(_ layout: String = "channel", config editConfig: (inout JSONObject) -> Void = { _ in },
                   tensors editTensors: (inout [SafetensorsWriter.Tensor]) -> Void = { _ in }) throws -> GLMError? {
        let source = FP8ModelTests.root + "/" + layout
        var template = Array("/tmp/glm-fp8-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw GLMError.io("mkdtemp failed") }
        let directory = String(cString: made)
        defer { unlink(directory + "/config.json"); unlink(directory + "/model.safetensors"); rmdir(directory) }
        guard case .object(var config) = try JSONValue.parse(FileSystem.readText(source + "/config.json")) else {
            throw GLMError.format("config.json is not an object")
        }
        editConfig(&config)
        try SafetensorsWriter.writeFile(path: directory + "/config.json", bytes: Array(JSONValue.object(config).compactJSON.utf8))
        let file = try SafetensorsFile(path: source + "/model.safetensors")
        var tensors = file.tensorNames.compactMap { name in
            file.tensors[name].map {
                SafetensorsWriter.Tensor(name: name, dtype: $0.dtype, shape: $0.shape, bytes: Array($0.bytes))
            }
        }
        editTensors(&tensors)
        try SafetensorsWriter.write(path: directory + "/model.safetensors", tensors: tensors)
        return code { _ = try Model.load(directory: directory) }
    }

    static let target = "model.layers.1.mlp.experts.2.up_proj"

    /// quantization_config with `edit` applied to it (a JSON object).
    func editQuantization(_ edit: @escaping (inout JSONObject) -> Void) -> (inout JSONObject) -> Void {
        { config in
            guard case .object(var q)? = config["quantization_config"] else { return }
            edit(&q)
            config["quantization_config"] = .object(q)
        }
    }

    @Test func unchangedCopyLoads() throws {
        #expect(try loadError() == nil)
        #expect(try loadError("deepseek") == nil)
    }

    @Test func damagedScalesAreRejectedWithTheTensorNamed() throws {
        let scale = FP8ModelTests.target + ".weight_scale"
        let missing = try loadError(tensors: { $0.removeAll { $0.name == scale } })
        #expect(missing?.code == .format && missing?.message.contains(scale) == true)

        let reshaped = try loadError(tensors: { tensors in
            for i in tensors.indices where tensors[i].name == scale {
                tensors[i].shape = [tensors[i].shape[0] / 4, 4]
            }
        })
        #expect(reshaped?.code == .format && reshaped?.message.contains("shape") == true)

        let retyped = try loadError(tensors: { tensors in
            for i in tensors.indices where tensors[i].name == scale { tensors[i].dtype = .i16 }
        })
        #expect(retyped?.code == .unsupported && retyped?.message.contains("I16") == true)

        let blockShape = try loadError("deepseek", tensors: { tensors in
            for i in tensors.indices where tensors[i].name == FP8ModelTests.target + ".weight_scale_inv" {
                tensors[i].shape = [1, 1]
                tensors[i].bytes = Array(tensors[i].bytes.prefix(4))
            }
        })
        #expect(blockShape?.message.contains("weight_scale_inv") == true)

        // A scale beside a BF16 weight is not part of the model.
        let stray = try loadError("tensor", tensors: { tensors in
            if let s = tensors.first(where: { $0.name == FP8ModelTests.target + ".weight_scale" }) {
                tensors.append(SafetensorsWriter.Tensor(name: "model.layers.1.mlp.shared_experts.up_proj.weight_scale",
                                                        dtype: s.dtype, shape: s.shape, bytes: s.bytes))
            }
        })
        #expect(stray?.message.contains("shared_experts.up_proj.weight_scale") == true)
    }

    @Test func fp8WithoutConfigOrIgnoredIsRejected() throws {
        let noConfig = try loadError(config: { $0["quantization_config"] = nil })
        #expect(noConfig?.code == .unsupported && noConfig?.message.contains("quantization_config") == true)

        let ignored = try loadError(config: editQuantization { q in
            q["ignore"] = .array([.string("lm_head"), .string("re:.*experts\\.2\\.up_proj$")])
        })
        #expect(ignored?.message.contains(FP8ModelTests.target) == true)
        #expect(ignored?.message.contains("not quantised") == true)

        // An FP8 norm is not an FP8 matrix.
        let norm = try loadError(tensors: { tensors in
            for i in tensors.indices where tensors[i].name == "model.norm.weight" {
                tensors[i].dtype = .f8e4m3
                tensors[i].bytes = Array(tensors[i].bytes.prefix(tensors[i].bytes.count / 2))
            }
        })
        #expect(norm?.code == .unsupported && norm?.message.contains("model.norm.weight") == true)
    }

    @Test func unsupportedQuantizationConfigsNameTheField() throws {
        func weights(_ edit: @escaping (inout JSONObject) -> Void) -> (inout JSONObject) -> Void {
            editQuantization { q in
                guard case .object(var groups)? = q["config_groups"], case .object(var g)? = groups["group_0"],
                      case .object(var w)? = g["weights"] else { return }
                edit(&w)
                g["weights"] = .object(w)
                groups["group_0"] = .object(g)
                q["config_groups"] = .object(groups)
            }
        }
        let cases: [(String, (inout JSONObject) -> Void)] = [
            ("quant_method", editQuantization { $0["quant_method"] = .string("awq") }),
            ("format", editQuantization { $0["format"] = .string("pack-quantized") }),
            ("strategy", weights { $0["strategy"] = .string("group") }),
            ("num_bits", weights { $0["num_bits"] = JSONValue(4) }),
            ("type", weights { $0["type"] = .string("int") }),
            ("symmetric", weights { $0["symmetric"] = .bool(false) }),
            ("block_structure", weights { $0["strategy"] = .string("block"); $0["block_structure"] = .array([JSONValue(0), JSONValue(128)]) }),
            ("kv_cache_scheme", editQuantization { $0["kv_cache_scheme"] = .string("fp8") }),
            ("group_size", weights { $0["group_size"] = JSONValue(128) }),
            ("made_up_field", editQuantization { $0["made_up_field"] = .bool(true) }),
            ("ignore", editQuantization { $0["ignore"] = .array([.string("re:(lm_head|gate)")]) }),
        ]
        for (field, edit) in cases {
            let error = try loadError(config: edit)
            #expect(error?.code == .unsupported, "\(field): \(String(describing: error))")
            #expect(error?.message.contains(field) == true, "\(field): \(error?.message ?? "loaded")")
        }
        let deepSeek: [(String, (inout JSONObject) -> Void)] = [
            ("weight_block_size", editQuantization { $0["weight_block_size"] = nil }),
            ("fmt", editQuantization { $0["fmt"] = .string("e5m2") }),
        ]
        for (field, edit) in deepSeek {
            let error = try loadError("deepseek", config: edit)
            #expect(error?.code == .unsupported && error?.message.contains(field) == true, "\(field)")
        }
    }

    @Test func ignorePatternsMatchLikePythonReMatch() throws {
        func matches(_ pattern: String, _ name: String) throws -> Bool {
            try ModuleNamePattern(pattern, source: "test").matchesPrefix(of: name)
        }
        #expect(try matches(".*mlp.gate$", "model.layers.3.mlp.gate"))
        #expect(try !matches(".*mlp.gate$", "model.layers.3.mlp.gate_proj"))
        #expect(try matches(".*gate$", "model.layers.3.mlp.experts.1.gate") && !matches(".*gate$", "a.gate_proj"))
        #expect(try matches("model[.]layers[.]9[0-9]", "model.layers.92.eh_proj"))      // re.match: a prefix
        #expect(try !matches("layers", "model.layers.1"))                                  // anchored at the start
        #expect(try matches("^model\\.layers\\.\\d+\\.self_attn", "model.layers.17.self_attn.q_proj"))
        #expect(try !matches("model\\.layers\\.\\d+\\.self_attn", "model.layers.x.self_attn"))
        #expect(try matches("a?b+c*$", "bbb") && !matches("a?b+c*$", "abx"))
        #expect(try matches("[^x]+$", "lm_head") && !matches("[^_]+$", "lm_head"))
        #expect(code { _ = try ModuleNamePattern("(a|b)", source: "t") }?.code == .unsupported)
        #expect(code { _ = try ModuleNamePattern("a{2}", source: "t") }?.code == .unsupported)
        #expect(code { _ = try ModuleNamePattern("[abc", source: "t") }?.code == .unsupported)
    }
}
