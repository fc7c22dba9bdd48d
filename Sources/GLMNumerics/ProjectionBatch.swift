import GLMSupport

/// One linear map `output = input · Wᵀ` over `tokens` rows (no bias; callers add biases themselves).
public struct Projection {
    public var weight: WeightMatrix
    public var input: UnsafePointer<Float>
    public var inputStride: Int
    public var tokens: Int
    public var output: UnsafeMutablePointer<Float>
    public var outputStride: Int

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
/// - many rows (prefill): the packed GEMM of CGLMKernels (`WeightMatrix.multiplyPacked`), which converts weight
///   panels to f32 while packing them. Not OpenBLAS: OpenBLAS 0.3.21 (Debian 12) picks its kernel by CPU model when
///   it is loaded and falls back to its SSE3 "Prescott" kernel on CPUs it does not know (this machine's Xeon,
///   family 6 model 207: prefill 6x slower than with its SkylakeX kernel); a library cannot choose for its host
///   (OPENBLAS_CORETYPE must be set before the process loads it). The packed GEMM picks AVX-512 or AVX2 itself.
///
/// Storage for the projection list is kept between runs, so a steady decode loop allocates nothing.
public final class ProjectionBatch {
    /// Input rows from which a tile goes through sgemm instead of the row kernel (measured by glm-bench).
    public static let gemmMinimumTokens = 8
    /// Weight rows per tile: the packed GEMM's limit (its f32 panels stay in L2); the row kernel's tile is smaller
    /// so that decode has enough tiles to balance.
    static let gemmTileRows = WeightMatrix.packedRowLimit
    static let rowKernelTileRows = 32

    private let workers: Workers
    private let tileScratch: [FloatBuffer]
    private var projections: [Projection] = []
    private var tiles: [(projection: Int, rows: Range<Int>)] = []

    public init(workers: Workers) throws(GLMError) {
        self.workers = workers
        var scratch: [FloatBuffer] = []
        for _ in 0..<workers.threadCount {
            scratch.append(try FloatBuffer(count: WeightMatrix.packedScratchCount, purpose: "GEMM panels"))
        }
        tileScratch = scratch
        projections.reserveCapacity(64)
        tiles.reserveCapacity(1024)
    }

    public func append(_ projection: Projection) {
        if projection.tokens > 0 && projection.weight.rows > 0 { projections.append(projection) }
    }

    /// Runs every appended projection, then forgets them.
    public func run() {
        defer {
            projections.removeAll(keepingCapacity: true)
            tiles.removeAll(keepingCapacity: true)
        }
        for (index, projection) in projections.enumerated() {
            let rows = projection.weight.rows
            let step = projection.tokens >= ProjectionBatch.gemmMinimumTokens
                ? ProjectionBatch.gemmTileRows : ProjectionBatch.rowKernelTileRows
            var start = 0
            while start < rows {
                let end = min(rows, start + step)
                tiles.append((index, start..<end))
                start = end
            }
        }
        projections.withUnsafeBufferPointer { projections in
            tiles.withUnsafeBufferPointer { tiles in
                workers.run(tasks: tiles.count) { slot, task in
                    let tile = tiles[task]
                    compute(projections[tile.projection], rows: tile.rows, scratch: tileScratch[slot].pointer)
                }
            }
        }
    }

    private func compute(_ p: Projection, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        let output = p.output + rows.lowerBound
        if p.tokens < ProjectionBatch.gemmMinimumTokens {
            p.weight.multiply(rows: rows, input: p.input, inputStride: p.inputStride, tokens: p.tokens,
                              output: output, outputStride: p.outputStride)
            return
        }
        p.weight.multiplyPacked(rows: rows, input: p.input, inputStride: p.inputStride, tokens: p.tokens,
                                output: output, outputStride: p.outputStride, scratch: scratch)
    }
}
