import CGLMKernels
import GLMSupport

/// A weight matrix `[rows = out, columns = in]` as stored in the checkpoint, read in place (no copy).
///
/// `storage` says how the elements are encoded; every kernel switches on it, so a new encoding (FP8 E4M3 with
/// per-channel or per-block scales, block-quantised integer formats) is a new case plus its row kernel and its
/// tile conversion, without touching the forward pass. Rows are contiguous (`columns` elements apart).
public struct WeightMatrix: @unchecked Sendable {
    // @unchecked: the pointers reach read-only memory maps that the owning model keeps alive.
    public enum Storage {
        case f32(UnsafePointer<Float>)
        /// bfloat16: the top 16 bits of an f32.
        case bf16(UnsafePointer<UInt16>)
        /// IEEE half precision.
        case f16(UnsafePointer<UInt16>)
        /// A ggml block format of a GGUF file (Q8_0, Q4_K, ...; `type` is the ggml type id, one that
        /// `glm_dequantize` handles), rows `rowBytes` apart. Multiplied by Q8_0- or Q8_K-quantised inputs with integer
        /// block dot products, as ggml does (docs/MODEL.md §2.6).
        case ggml(type: Int32, base: UnsafeRawPointer, rowBytes: Int)
        /// FP8 E4M3FN (one byte per element, rows `columns` bytes apart) with f32 scales per channel, per block or
        /// per tensor (`glm_fp8_scales`; the scale array is owned by the model). Converted in registers through F16C
        /// (docs/MODEL.md §4), never copied.
        case fp8(base: UnsafePointer<UInt8>, scales: glm_fp8_scales)
    }

    public let rows: Int
    public let columns: Int
    public let storage: Storage

    public init(rows: Int, columns: Int, storage: Storage) {
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    /// Bytes of the stored elements (what one pass over the matrix reads from memory).
    public var byteCount: Int {
        switch storage {
        case .f32: return rows * columns * 4
        case .bf16, .f16: return rows * columns * 2
        case .ggml(_, _, let rowBytes): return rows * rowBytes
        case .fp8: return rows * columns
        }
    }

    /// `output[t * outputStride + (r - rowRange.lowerBound)] = Σ_c W[r, c] · input[t * inputStride + c]` for every
    /// `r` in `rowRange` and `t < tokens`, converting the weights in registers (the decode and small-batch path).
    /// `path` picks the integer kernels' build for block-quantised weights (`.avx512`: AVX-512 VNNI where the CPU has
    /// it; the same bits as `.avx2`) and FP8's (AVX-512 F/BW, the same bits); float weights run the same kernel on
    /// both.
    public func multiply(rows rowRange: Range<Int>, input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                         output: UnsafeMutablePointer<Float>, outputStride: Int, path: KernelPath) {
        let first = rowRange.lowerBound * columns
        switch storage {
        case .f32(let w):
            glm_matmul_rows_f32(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                                output, outputStride)
        case .bf16(let w):
            glm_matmul_rows_bf16(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                                 output, outputStride)
        case .f16(let w):
            glm_matmul_rows_f16(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                                output, outputStride)
        case .ggml(let type, let base, let rowBytes):
            WeightMatrix.multiplyGGML(type: type, rows: base + rowRange.lowerBound * rowBytes, rowBytes: rowBytes,
                                      count: rowRange.count, columns: columns, input: input, inputStride: inputStride,
                                      tokens: tokens, output: output, outputStride: outputStride, path: path)
        case .fp8(let w, let scales):
            glm_matmul_rows_fp8(w, columns, rowRange.lowerBound, rowRange.count, columns, scales, input, inputStride,
                                tokens, output, outputStride, path == .avx512 ? 1 : 0)
        }
    }

    /// The same product as `multiply` for many input rows (prefill): a packed, register-blocked GEMM that converts
    /// weight panels to f32 while packing them. At most `packedRowLimit` rows per call; `scratch` holds
    /// `packedScratchCount` floats. `path` picks the micro-kernel (results are bit-identical on both).
    public func multiplyPacked(rows rowRange: Range<Int>, input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                               output: UnsafeMutablePointer<Float>, outputStride: Int,
                               scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        let first = rowRange.lowerBound * columns
        let avx512: Int32 = path == .avx512 ? 1 : 0
        switch storage {
        case .f32(let w):
            glm_gemm_f32(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                         output, outputStride, scratch, avx512)
        case .bf16(let w):
            glm_gemm_bf16(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                          output, outputStride, scratch, avx512)
        case .f16(let w):
            glm_gemm_f16(w + first, columns, rowRange.count, columns, input, inputStride, tokens,
                         output, outputStride, scratch, avx512)
        case .ggml(let type, let base, let rowBytes):
            // The integer kernels pick their prefill tiles or panels themselves (up to 7 tokens the bits of
            // decode's row kernel; the panels' own order from glm_q8act_panel_min_tokens tokens on).
            WeightMatrix.multiplyGGML(type: type, rows: base + rowRange.lowerBound * rowBytes, rowBytes: rowBytes,
                                      count: rowRange.count, columns: columns, input: input, inputStride: inputStride,
                                      tokens: tokens, output: output, outputStride: outputStride, path: path)
        case .fp8(let w, let scales):
            glm_gemm_fp8(w, columns, rowRange.lowerBound, rowRange.count, columns, scales, input, inputStride, tokens,
                         output, outputStride, scratch, avx512)
        }
    }

    /// Every block type: activations quantised to Q8_0 or Q8_K and integer block dot products (ggml's CPU way).
    static func hasIntegerKernel(_ type: Int32) -> Bool {
        type != Int32(GLM_GGML_F32) && type != Int32(GLM_GGML_F16) && type != Int32(GLM_GGML_BF16)
    }

    /// For block-quantised storage with an integer kernel: the activation format (`glm_q8act_kind`: matrices of
    /// the same kind can share one quantised input) and the bytes of one quantised input row; nil otherwise.
    public var quantizedInputLayout: (kind: Int32, rowBytes: Int)? {
        guard case .ggml(let type, _, _) = storage, WeightMatrix.hasIntegerKernel(type) else { return nil }
        let rowBytes = glm_q8act_row_bytes(type, columns)
        let kind = glm_q8act_kind(type)
        guard rowBytes > 0, kind >= 0 else { return nil }
        return (kind, rowBytes)
    }

    /// Whether bf16 weights under `BF16Inputs.bf16` multiply with vdpbf16ps (the avx512 path on a CPU with AVX-512
    /// BF16); elsewhere the rounded inputs are stored as f32 and take the f32-input kernels.
    public static func bf16InputsRunNative(path: KernelPath) -> Bool {
        path == .avx512 && glm_bf16act_native_available() != 0
    }

    /// Input kinds of bf16 weights under `BF16Inputs.bf16` (beside glm_q8act_kind's 0 and 1): rows of bf16 for
    /// vdpbf16ps, or rows of the rounded values as f32.
    static let bf16NativeInputKind: Int32 = 100
    static let bf16RoundedInputKind: Int32 = 101

    /// What the input of a product with this matrix is converted to once per run, shared by every tile of rows and
    /// every matrix of the same kind: the activation format and the bytes of one converted row. Block-quantised
    /// weights: `quantizedInputLayout`; bf16 weights under `BF16Inputs.bf16`: the inputs rounded to bf16; nil for
    /// products on the f32 input itself.
    public func inputLayout(bf16Inputs: BF16Inputs, path: KernelPath) -> (kind: Int32, rowBytes: Int)? {
        guard case .bf16 = storage else { return quantizedInputLayout }
        guard bf16Inputs == .bf16, columns > 0 else { return nil }
        let native = WeightMatrix.bf16InputsRunNative(path: path)
        return (native ? WeightMatrix.bf16NativeInputKind : WeightMatrix.bf16RoundedInputKind,
                glm_bf16act_row_bytes(columns, native ? 1 : 0))
    }

    /// Converts `tokens` input rows into `destination` as `inputLayout(bf16Inputs:path:)` says, rows `rowBytes` apart.
    public func convertInput(_ input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                             into destination: UnsafeMutableRawPointer, bf16Inputs: BF16Inputs, path: KernelPath) {
        guard case .bf16 = storage else {
            quantizeInput(input, inputStride: inputStride, tokens: tokens, into: destination)
            return
        }
        glm_bf16act_round(input, inputStride, columns, tokens, destination,
                          WeightMatrix.bf16InputsRunNative(path: path) ? 1 : 0)
    }

    /// Quantises `tokens` input rows as this matrix's integer kernel wants them (`quantizedInputLayout`) into
    /// `destination`, rows `quantizedInputLayout.rowBytes` apart.
    public func quantizeInput(_ input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                              into destination: UnsafeMutableRawPointer) {
        guard case .ggml(let type, _, _) = storage else { return }
        _ = glm_q8act_quantize(type, input, inputStride, columns, tokens, destination)
    }

    /// `multiply` with the input already quantised by `quantizeInput`: the same bits as `multiply` on the f32 input,
    /// for any number of tokens and rows (decode: the row kernel; from 4 tokens on: the prefill tiles, and from
    /// `glm_q8act_panel_min_tokens` tokens on the prefill panels).
    public func multiply(rows rowRange: Range<Int>, quantizedInput: UnsafeRawPointer, tokens: Int,
                         output: UnsafeMutablePointer<Float>, outputStride: Int, path: KernelPath) {
        guard case .ggml(let type, let base, let rowBytes) = storage else { return }
        _ = glm_matmul_rows_q8act_pre(type, base + rowRange.lowerBound * rowBytes, rowBytes, rowRange.count, columns,
                                      quantizedInput, tokens, output, outputStride, path == .avx512 ? 1 : 0)
    }

    /// bf16 rows times inputs rounded by `convertInput` to native bf16 rows (vdpbf16ps; `bf16InputsRunNative`). The
    /// rounded-f32 form takes `multiply(rows:input:...)` / `multiplyPacked` instead. False if this is not bf16 storage
    /// or the CPU cannot run the kernel (nothing written).
    public func multiply(rows rowRange: Range<Int>, bf16Input: UnsafeRawPointer, tokens: Int,
                         output: UnsafeMutablePointer<Float>, outputStride: Int) -> Bool {
        guard case .bf16(let w) = storage else { return false }
        return glm_matmul_rows_bf16act(w + rowRange.lowerBound * columns, columns, rowRange.count, columns, bf16Input,
                                       tokens, output, outputStride) == 0
    }

    /// Block-quantised rows times f32 inputs: the integer kernel (unless a row is too wide for its stack buffer),
    /// else each row dequantised exactly and multiplied in f32. The loader admits only types
    /// `glm_dequantize` handles, so the fallback cannot fail.
    static func multiplyGGML(type: Int32, rows: UnsafeRawPointer, rowBytes: Int, count: Int, columns: Int,
                             input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                             output: UnsafeMutablePointer<Float>, outputStride: Int, path: KernelPath) {
        if hasIntegerKernel(type),
           glm_matmul_rows_q8act(type, rows, rowBytes, count, columns, input, inputStride, tokens, output,
                                 outputStride, path == .avx512 ? 1 : 0) == 0 {
            return
        }
        _ = glm_matmul_rows_ggml(type, rows, rowBytes, count, columns, input, inputStride, tokens, output, outputStride)
    }

    public static let packedRowLimit = Int(GLM_GEMM_MAX_ROWS)

    /// The f32 GEMM's panels, or the FP8 GEMM's (its f32 weight panel and partial products on top), whichever is more.
    public static var packedScratchCount: Int { max(glm_gemm_scratch_floats(), glm_gemm_fp8_scratch_floats()) }

    /// The rows `rowRange` as f32 with row stride `columns`: in place when stored as f32, otherwise converted into
    /// `scratch` (which must hold `rowRange.count * columns` floats). GEMM tiles and embedding lookups use this.
    public func f32Rows(_ rowRange: Range<Int>, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let first = rowRange.lowerBound * columns
        let count = rowRange.count * columns
        switch storage {
        case .f32(let w):
            return w + first
        case .bf16(let w):
            glm_convert_bf16_to_f32(w + first, scratch, count)
            return UnsafePointer(scratch)
        case .f16(let w):
            glm_convert_f16_to_f32(w + first, scratch, count)
            return UnsafePointer(scratch)
        case .ggml(let type, let base, let rowBytes):
            _ = count
            _ = glm_dequantize_rows(type, base + rowRange.lowerBound * rowBytes, rowBytes, rowRange.count, columns,
                                    scratch)
            return UnsafePointer(scratch)
        case .fp8(let w, let scales):
            glm_dequantize_fp8_rows(w, columns, rowRange.lowerBound, rowRange.count, columns, scales, scratch)
            return UnsafePointer(scratch)
        }
    }

    /// Copies row `row` into `destination` as f32 (an embedding lookup).
    public func copyRow(_ row: Int, to destination: UnsafeMutablePointer<Float>) {
        let source = f32Rows(row..<(row + 1), scratch: destination)
        if source != UnsafePointer(destination) { destination.update(from: source, count: columns) }
    }
}
