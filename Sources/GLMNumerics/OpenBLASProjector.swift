import COpenBLAS
import GLMSupport

/// The `.openBLAS` backend: projections with many input rows through OpenBLAS's `cblas_sgemm`.
///
/// Threads: OpenBLAS's pthread build starts threads of its own when it is loaded. They must never compute while
/// our pool does, or the two oversubscribe the cores. So sgemm is called from the session's thread only, between
/// pool jobs, never inside one, with OpenBLAS's thread count set to the session's just before (OpenBLAS's count is
/// process-wide; sessions with different counts each set theirs). bf16/f16 weights are converted to f32 one panel
/// of rows at a time by the pool, then multiplied by sgemm: the two alternate, they never overlap. Every OpenBLAS
/// call goes through `OpenBLASCalls.run`, so a fork waits for it to return (OpenBLAS's own fork handler does not).
final class OpenBLASProjector {
    /// Floats of the f32 weight panel (4 MiB): large enough that sgemm's per-call overhead is negligible,
    /// small enough to stay in the last-level cache between the conversion and the sgemm that reads it.
    static let panelFloats = 1 << 20
    /// Weight rows per conversion task.
    static let conversionRows = 16

    private let workers: Workers
    private let panel: FloatBuffer

    init(workers: Workers) throws(GLMError) {
        self.workers = workers
        panel = try FloatBuffer(count: OpenBLASProjector.panelFloats, purpose: "OpenBLAS weight panel")
    }

    /// Whether sgemm computes `p`: many input rows, a weight row that fits the panel, and every dimension within
    /// OpenBLAS's 32-bit integers. The rest goes to the row kernel or the packed GEMM.
    func computes(_ p: Projection) -> Bool {
        p.tokens >= ProjectionBatch.gemmMinimumTokens && p.weight.columns <= OpenBLASProjector.panelFloats
            && max(p.weight.rows, p.tokens, p.inputStride, p.outputStride) <= Int(Int32.max)
    }

    /// Sets OpenBLAS's thread count to the session's; call before a series of `multiply`.
    func prepareThreads() { OpenBLASThreads.use(workers.threadCount) }

    /// `p.output[t, r] = Σ_c p.input[t, c] · W[r, c]` through sgemm, on the calling thread and OpenBLAS's threads.
    func multiply(_ p: Projection) {
        let w = p.weight
        if case .f32(let weights) = w.storage {
            sgemm(p, weights: weights, rows: 0..<w.rows)
            return
        }
        let panelRows = OpenBLASProjector.panelFloats / max(w.columns, 1)
        let step = OpenBLASProjector.conversionRows
        let panel = self.panel.pointer
        for first in stride(from: 0, to: w.rows, by: panelRows) {
            let rows = first..<min(w.rows, first + panelRows)
            let tasks = (rows.count + step - 1) / step
            workers.run(tasks: tasks, elementsPerTask: step * w.columns,
                        job: ConvertPanel(weight: w, rows: rows, rowsPerTask: step, panel: panel))
            sgemm(p, weights: UnsafePointer(panel), rows: rows)
        }
    }

    /// Task i converts the weight rows `rows.lowerBound + i · rowsPerTask` (up to `rowsPerTask` of them, within
    /// `rows`) to f32, into their place in the panel that starts with row `rows.lowerBound`.
    private struct ConvertPanel: WorkerJob {
        let weight: WeightMatrix
        let rows: Range<Int>
        let rowsPerTask: Int
        let panel: UnsafeMutablePointer<Float>

        func run(slot: Int, task: Int) {
            let start = rows.lowerBound + task * rowsPerTask
            _ = weight.f32Rows(start..<min(rows.upperBound, start + rowsPerTask),
                               scratch: panel + (start - rows.lowerBound) * weight.columns)
        }
    }

    /// sgemm of the weight rows `rows`, stored as f32 at `weights` with row stride `columns`.
    private func sgemm(_ p: Projection, weights: UnsafePointer<Float>, rows: Range<Int>) {
        let columns = Int32(p.weight.columns)
        OpenBLASCalls.run {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(p.tokens), Int32(rows.count), columns,
                        1, p.input, Int32(p.inputStride), weights, columns,
                        0, p.output + rows.lowerBound, Int32(p.outputStride))
        }
    }
}

/// OpenBLAS's thread count, set explicitly: one thread from the first time the library needs numerics (a
/// `ProjectionBatch` is created; the `.packed` backend never calls OpenBLAS, so its threads stay asleep), the
/// session's count while the `.openBLAS` backend computes.
enum OpenBLASThreads {
    private static let singleThreadedAtStart: Void = OpenBLASCalls.run { openblas_set_num_threads(1) }

    /// Sets OpenBLAS to one thread, the first time only.
    static func configure() { singleThreadedAtStart }

    static func use(_ threads: Int) {
        let wanted = Int32(clamping: threads)
        OpenBLASCalls.run {
            if openblas_get_num_threads() != wanted { openblas_set_num_threads(wanted) }
        }
    }
}
