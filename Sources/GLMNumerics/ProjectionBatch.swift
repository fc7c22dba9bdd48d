import Glibc
import GLMSupport

/// One linear map `output = input · Wᵀ` over `tokens` rows (no bias; callers add biases themselves).
public struct Projection {
    public var weight: WeightMatrix
    public var input: UnsafePointer<Float>
    public var inputStride: Int
    public var tokens: Int
    public var output: UnsafeMutablePointer<Float>
    public var outputStride: Int
    /// Block-quantised weights: the input quantised for the integer kernel, set by `ProjectionBatch.run` (one
    /// quantisation serves every tile of rows and every projection of the batch with the same input).
    var quantizedInput: UnsafeRawPointer? = nil

    public init(_ weight: WeightMatrix, input: UnsafePointer<Float>, inputStride: Int, tokens: Int,
                output: UnsafeMutablePointer<Float>, outputStride: Int) {
        self.weight = weight
        self.input = input
        self.inputStride = inputStride
        self.tokens = tokens
        self.output = output
        self.outputStride = outputStride
    }
}

/// Computes a set of independent projections in one parallel job (q, k and v; every expert's gate and up; ...),
/// split into tiles of weight rows so all threads stay busy and every weight byte is read once.
///
/// Per tile, by the number of input rows:
/// - few rows (decode, experts that received few tokens): the row kernel converts weights in registers
///   (`WeightMatrix.multiply`); this is memory-bound and reads each weight once;
/// - many rows (prefill), `.packed` backend: the packed GEMM of CGLMKernels (`WeightMatrix.multiplyPacked`), which
///   converts weight panels to f32 while packing them and picks AVX-512 or AVX2 itself.
/// Block-quantised (GGUF) weights take neither: their inputs are quantised once per run (Q8_0 or Q8_K, as ggml
/// does) and every tile runs the integer kernels of quantdot.c, which use a 2×4 / 1×4 register tile of weight rows ×
/// tokens from 4 tokens on and give the same bits for any number of tokens.
/// With the `.openBLAS` backend the projections with many rows are not tiled: after the pool has run the others,
/// each goes through `cblas_sgemm` on the calling thread with OpenBLAS's threads (`OpenBLASProjector`), so the two
/// thread pools never compute at the same time. Why `.packed` is the default: `GEMMBackend`.
///
/// Storage for the projection list is kept between runs, so a steady decode loop allocates nothing.
public final class ProjectionBatch {
    /// Input rows from which a projection goes through a GEMM instead of the row kernel (measured by glm-bench).
    public static let gemmMinimumTokens = 8
    /// The same for f32/bf16/f16 weights, on both kernel paths: the GEMM's weight panels (converted to f32 and
    /// transposed, a fixed cost per matrix) pay off only from ~32–40 tokens, while the row kernel's 2 weight rows × 4
    /// tokens blocks stay at ~72–75% of the FMA peak. One 1536 × 5120 bf16 product (an expert's up projection), 1
    /// thread, packed GEMM / row kernel: AMD EPYC Zen 3 (AVX2 micro-kernel), 2026-12-07, 6.4/2.9 ms at 8 tokens,
    /// 6.1/4.3 at 16, 7.1/6.5 at 24, 9.7/8.7 at 32, 12.9/12.9 at 40; AMD EPYC Zen 4 (AVX-512 micro-kernel),
    /// 2026-12-07, 4.30/3.06 at 8, 6.10/4.23 at 16, 6.19/5.55 at 24, 7.94/8.07 at 32. In a 512-token prefill of a MoE
    /// model (~26 tokens per routed expert) most experts take the row kernel. One threshold for both paths also keeps
    /// their results bit-identical (the two GEMM micro-kernels sum in the same order; the row kernel in another).
    public static let floatGEMMMinimumTokens = 32

    /// Whether a projection of `weight` over `tokens` input rows goes through a GEMM (packed or OpenBLAS) rather
    /// than the row kernel. The same on both kernel paths.
    public static func usesGEMM(_ weight: WeightMatrix, tokens: Int) -> Bool {
        switch weight.storage {
        case .f32, .bf16, .f16:
            return tokens >= floatGEMMMinimumTokens
        default:
            return tokens >= gemmMinimumTokens
        }
    }

    static func usesGEMM(_ p: Projection) -> Bool { usesGEMM(p.weight, tokens: p.tokens) }
    /// Weight rows per GEMM tile: the packed GEMM's limit (its f32 panels stay in L2).
    static let gemmTileRows = WeightMatrix.packedRowLimit
    /// The row kernel's tiles are contiguous runs of rows as long as balance allows: a projection is cut into about
    /// 2 tiles per thread, between 32 and 512 rows. With tiles handed out in turn, each thread's next tile is another
    /// thread's length further on, so every tile restarts the hardware prefetcher's stream; short tiles (32 rows,
    /// 92–134 KiB of a 4-bit row block) paid that on every one. Measured on 2 vCPUs of a Zen 5 EPYC, 2-thread decode
    /// of the synthetic GLM-4.7-shaped Q4_0 file (`glm-bench model F 2 8 64`, alternating builds): 32 rows 31.9–32.9
    /// tokens/s, 128 rows 35.7–38.9, 512 rows 38.7–44.0, 2048 rows 38.8–40.0. One thread reads its tiles in order
    /// and is unaffected.
    static let rowKernelTileRows = 32...512

    /// Rows per row-kernel tile of a projection with `rows` rows on `threads` threads (`rowKernelTileRows`).
    static func rowKernelTile(rows: Int, threads: Int) -> Int {
        let balanced = rows / max(1, 2 * threads)
        return min(rowKernelTileRows.upperBound, max(rowKernelTileRows.lowerBound, balanced))
    }

    public let backend: GEMMBackend
    /// The packed GEMM's micro-kernel (AVX2 or AVX-512).
    public let path: KernelPath
    /// How bf16 weights multiply their inputs (`BF16Inputs`).
    public let bf16Inputs: BF16Inputs
    private let workers: Workers
    private let openBLAS: OpenBLASProjector?
    private let tileScratch: [FloatBuffer]
    private var projections: [Projection] = []
    private var tiles: [(projection: Int, rows: Range<Int>)] = []
    /// Distinct inputs of the block-quantised projections of a run, quantised once each into `quantized`.
    private var quantizations: [Quantization] = []
    private var quantizationTasks: [(quantization: Int, tokens: Range<Int>)] = []
    private var quantized: UnsafeMutableRawPointer?
    private var quantizedCapacity = 0

    public init(workers: Workers, backend: GEMMBackend = .packed, path: KernelPath,
                bf16Inputs: BF16Inputs = .f32) throws(GLMError) {
        OpenBLASThreads.configure()
        self.backend = backend
        self.path = path
        self.bf16Inputs = bf16Inputs
        self.workers = workers
        openBLAS = backend == .openBLAS ? try OpenBLASProjector(workers: workers) : nil
        var scratch: [FloatBuffer] = []
        for _ in 0..<workers.threadCount {
            scratch.append(try FloatBuffer(count: WeightMatrix.packedScratchCount, purpose: "GEMM panels"))
        }
        tileScratch = scratch
        projections.reserveCapacity(64)
        tiles.reserveCapacity(1024)
        quantizations.reserveCapacity(64)
        quantizationTasks.reserveCapacity(256)
    }

    deinit { free(quantized) }

    /// Bytes of the per-thread packing scratch.
    public var scratchBytes: Int { tileScratch.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } }

    public func append(_ projection: Projection) {
        if projection.tokens > 0 && projection.weight.rows > 0 { projections.append(projection) }
    }

    /// Queues `output = input · Wᵀ` over `tokens` rows stored back to back: input rows `weight.columns` wide, output
    /// rows `weight.rows` wide. Every projection of the forward pass has this shape, so its call names only the
    /// weight and the two buffers.
    public func append(_ weight: WeightMatrix, tokens: Int, input: UnsafePointer<Float>,
                       output: UnsafeMutablePointer<Float>) {
        append(Projection(weight, input: input, inputStride: weight.columns, tokens: tokens, output: output,
                          outputStride: weight.rows))
    }

    /// `append(weight, tokens:input:output:)`, then `run()`: for a projection that nothing else can run beside.
    public func run(_ weight: WeightMatrix, tokens: Int, input: UnsafePointer<Float>,
                    output: UnsafeMutablePointer<Float>) {
        append(weight, tokens: tokens, input: input, output: output)
        run()
    }

    /// Runs every appended projection, then forgets them.
    public func run() {
        defer {
            projections.removeAll(keepingCapacity: true)
            tiles.removeAll(keepingCapacity: true)
            quantizations.removeAll(keepingCapacity: true)
            quantizationTasks.removeAll(keepingCapacity: true)
        }
        quantizeInputs()
        for (index, projection) in projections.enumerated() where openBLAS?.computes(projection) != true {
            let rows = projection.weight.rows
            let step = ProjectionBatch.usesGEMM(projection)
                ? ProjectionBatch.gemmTileRows
                : ProjectionBatch.rowKernelTile(rows: rows, threads: workers.threadCount)
            var start = 0
            while start < rows {
                let end = min(rows, start + step)
                tiles.append((index, start..<end))
                start = end
            }
        }
        projections.withUnsafeBufferPointer { projections in
            tiles.withUnsafeBufferPointer { tiles in
                workers.run(tasks: tiles.count,
                            job: ComputeTiles(projections: projections, tiles: tiles, scratch: tileScratch, path: path))
            }
        }
        guard let openBLAS, projections.contains(where: openBLAS.computes) else { return }
        openBLAS.prepareThreads()
        for projection in projections where openBLAS.computes(projection) { openBLAS.multiply(projection) }
    }

    /// One input of block-quantised projections: `tokens` rows of `columns` floats, quantised to `rowBytes`-byte
    /// rows at `offset` in the run's buffer.
    private struct Quantization {
        let weight: WeightMatrix
        let input: UnsafePointer<Float>
        let inputStride: Int
        let tokens: Int
        let kind: Int32
        let rowBytes: Int
        let offset: Int
    }

    /// Token rows per quantisation task (a prefill input is split so that every thread quantises).
    static let quantizationTokensPerTask = 16

    /// Quantises the input of every block-quantised projection once (projections that share an input and an
    /// activation format share the result), in parallel for many tokens, and points the projections at it. Without
    /// memory for the buffer the projections keep their f32 inputs, and the integer kernels quantise per tile instead
    /// (the same bits, more work); bf16 weights then multiply the unrounded f32 inputs (as under `BF16Inputs.f32`).
    private func quantizeInputs() {
        var total = 0
        for index in projections.indices where openBLAS?.computes(projections[index]) != true {
            let p = projections[index]
            guard let layout = p.weight.inputLayout(bf16Inputs: bf16Inputs, path: path) else { continue }
            let shared = quantizations.firstIndex {
                $0.input == p.input && $0.inputStride == p.inputStride && $0.tokens == p.tokens
                    && $0.kind == layout.kind && $0.weight.columns == p.weight.columns
            }
            if shared == nil {
                quantizations.append(Quantization(weight: p.weight, input: p.input, inputStride: p.inputStride,
                                                  tokens: p.tokens, kind: layout.kind, rowBytes: layout.rowBytes,
                                                  offset: total))
                total += p.tokens * layout.rowBytes
            }
        }
        if quantizations.isEmpty { return }
        if total > quantizedCapacity {
            free(quantized)
            quantized = nil
            quantizedCapacity = 0
            var raw: UnsafeMutableRawPointer?
            let capacity = total + total / 4
            guard posix_memalign(&raw, 64, capacity) == 0, let raw else { return }
            quantized = raw
            quantizedCapacity = capacity
        }
        guard let buffer = quantized else { return }
        let step = ProjectionBatch.quantizationTokensPerTask
        var elements = 0
        for (index, q) in quantizations.enumerated() {
            var start = 0
            while start < q.tokens {
                quantizationTasks.append((index, start..<min(q.tokens, start + step)))
                start += step
            }
            elements = max(elements, min(q.tokens, step) * q.weight.columns)
        }
        quantizations.withUnsafeBufferPointer { quantizations in
            quantizationTasks.withUnsafeBufferPointer { tasks in
                workers.run(tasks: tasks.count, elementsPerTask: elements,
                            job: QuantizeInputs(quantizations: quantizations, tasks: tasks, buffer: buffer,
                                                bf16Inputs: bf16Inputs, path: path))
            }
        }
        for index in projections.indices where openBLAS?.computes(projections[index]) != true {
            let p = projections[index]
            guard let layout = p.weight.inputLayout(bf16Inputs: bf16Inputs, path: path) else { continue }
            if let q = quantizations.first(where: {
                $0.input == p.input && $0.inputStride == p.inputStride && $0.tokens == p.tokens
                    && $0.kind == layout.kind && $0.weight.columns == p.weight.columns
            }) {
                projections[index].quantizedInput = UnsafeRawPointer(buffer + q.offset)
            }
        }
    }

    /// Task i quantises the token rows `tasks[i].tokens` of input `tasks[i].quantization`.
    private struct QuantizeInputs: WorkerJob {
        let quantizations: UnsafeBufferPointer<Quantization>
        let tasks: UnsafeBufferPointer<(quantization: Int, tokens: Range<Int>)>
        let buffer: UnsafeMutableRawPointer
        let bf16Inputs: BF16Inputs
        let path: KernelPath

        func run(slot: Int, task: Int) {
            let (index, tokens) = tasks[task]
            let q = quantizations[index]
            q.weight.convertInput(q.input + tokens.lowerBound * q.inputStride, inputStride: q.inputStride,
                                  tokens: tokens.count, into: buffer + q.offset + tokens.lowerBound * q.rowBytes,
                                  bf16Inputs: bf16Inputs, path: path)
        }
    }

    /// Task i computes the output columns `tiles[i].rows` of the projection `tiles[i].projection`.
    private struct ComputeTiles: WorkerJob {
        let projections: UnsafeBufferPointer<Projection>
        let tiles: UnsafeBufferPointer<(projection: Int, rows: Range<Int>)>
        /// Per slot: the packed GEMM's panels.
        let scratch: [FloatBuffer]
        let path: KernelPath

        func run(slot: Int, task: Int) {
            let tile = tiles[task]
            ProjectionBatch.compute(projections[tile.projection], rows: tile.rows, scratch: scratch[slot].pointer,
                                    path: path)
        }
    }

    private static func compute(_ p: Projection, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>,
                                path: KernelPath) {
        let output = p.output + rows.lowerBound
        var p = p
        if let converted = p.quantizedInput {
            guard case .bf16 = p.weight.storage else {
                p.weight.multiply(rows: rows, quantizedInput: converted, tokens: p.tokens, output: output,
                                  outputStride: p.outputStride, path: path)
                return
            }
            // bf16 weights, inputs rounded to bf16: vdpbf16ps on native rows, else the f32-input kernels below on
            // the rounded values.
            if WeightMatrix.bf16InputsRunNative(path: path) {
                if p.weight.multiply(rows: rows, bf16Input: converted, tokens: p.tokens, output: output,
                                     outputStride: p.outputStride) { return }
            } else {
                p.input = converted.assumingMemoryBound(to: Float.self)
                p.inputStride = p.weight.columns
            }
        }
        if !ProjectionBatch.usesGEMM(p) {
            p.weight.multiply(rows: rows, input: p.input, inputStride: p.inputStride, tokens: p.tokens,
                              output: output, outputStride: p.outputStride, path: path)
            return
        }
        p.weight.multiplyPacked(rows: rows, input: p.input, inputStride: p.inputStride, tokens: p.tokens,
                                output: output, outputStride: p.outputStride, scratch: scratch, path: path)
    }
}
