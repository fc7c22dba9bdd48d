import CGLMKernels
import GLMSupport

/// Products of f32 matrices with arbitrary row strides, on the calling thread: the attention's Q·Kᵀ and P·V
/// over the KV cache. A few left-hand rows (decode) use the row kernel / axpy; more use the packed GEMM.
public enum MatrixProducts {
    /// Floats of scratch each call needs (one buffer per thread).
    public static var scratchCount: Int { WeightMatrix.packedScratchCount }

    /// `c[i, j] = Σ_k a[i, k] · b[j, k]` for `i < m`, `j < n`, `k < depth`.
    public static func multiplyTransposed(_ a: UnsafePointer<Float>, lda: Int, rows m: Int,
                                          _ b: UnsafePointer<Float>, ldb: Int, rows n: Int, depth: Int,
                                          into c: UnsafeMutablePointer<Float>, ldc: Int,
                                          scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        if m < ProjectionBatch.gemmMinimumTokens {
            glm_matmul_rows_f32(b, ldb, n, depth, a, lda, m, c, ldc)
            return
        }
        let tile = WeightMatrix.packedRowLimit
        for j in stride(from: 0, to: n, by: tile) {
            glm_gemm_f32(b + j * ldb, ldb, min(tile, n - j), depth, a, lda, m, c + j, ldc, scratch,
                         path == .avx512 ? 1 : 0)
        }
    }

    /// `c[i, j] = Σ_k a[i, k] · b[k, j]` for `i < m`, `j < n`, `k < depth`.
    public static func multiply(_ a: UnsafePointer<Float>, lda: Int, rows m: Int,
                                _ b: UnsafePointer<Float>, ldb: Int, depth: Int, columns n: Int,
                                into c: UnsafeMutablePointer<Float>, ldc: Int,
                                scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        if m < ProjectionBatch.gemmMinimumTokens {
            for i in 0..<m {
                let row = c + i * ldc
                row.update(repeating: 0, count: n)
                for k in 0..<depth { glm_axpy(a[i * lda + k], b + k * ldb, row, n) }
            }
            return
        }
        let tile = WeightMatrix.packedRowLimit
        for j in stride(from: 0, to: n, by: tile) {
            glm_gemm_f32_kn(b + j, ldb, min(tile, n - j), depth, a, lda, m, c + j, ldc, scratch,
                            path == .avx512 ? 1 : 0)
        }
    }
}
