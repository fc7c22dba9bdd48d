import COpenBLAS
import Glibc
import GLMSupport

/// Which code computes the projections that have many input rows (prefill). Projections with few rows (decode,
/// experts that received few tokens) always use the row kernels of CGLMKernels on the session's threads.
///
/// Both give the same results up to summation order. `.packed` is the default because OpenBLAS's speed depends on
/// how the host configured it: OpenBLAS 0.3.21 (Debian 12) picks its kernel by CPU model when it is loaded and
/// falls back to its slow SSE3 "Prescott" kernel on CPUs it does not know, unless OPENBLAS_CORETYPE was set before
/// the process loaded it (glm-bench `model ... --gemm both` measures the two side by side).
public enum GEMMBackend: String, Sendable, CaseIterable {
    /// The packed GEMM of CGLMKernels (AVX-512 or AVX2, chosen at run time) on the session's worker threads.
    case packed
    /// OpenBLAS's `cblas_sgemm`, called from the session's thread with OpenBLAS's own threads (as many as the
    /// session's); bf16/f16 weights are converted to f32 panel by panel first.
    case openBLAS = "openblas"

    /// The environment variable that picks the backend when the caller does not: `packed` or `openblas`.
    public static let environmentVariable = "GLM_GEMM"

    /// The value of `GLM_GEMM`, nil when it is unset.
    public static var environmentValue: String? {
        getenv(environmentVariable).map { String(cString: $0) }
    }

    /// The kernel OpenBLAS chose for this CPU when the process loaded it ("Prescott", "Haswell", "SkylakeX", ...).
    public static var openBLASCoreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// `requested` when the caller chose one (an explicit choice wins, as for every libglm setting that also has
    /// an environment variable), else the backend `environment` names (GLM_GEMM's value), else `.packed`. A value
    /// of GLM_GEMM other than packed/openblas is `.invalidArgument`, also when it is not used, so a typo in the
    /// environment is never silently ignored.
    public static func resolve(_ requested: GEMMBackend?, environment: String? = environmentValue)
        throws(GLMError) -> GEMMBackend {
        guard let environment, !environment.isEmpty else { return requested ?? .packed }
        guard let backend = GEMMBackend(rawValue: environment.lowercased()) else {
            throw .invalidArgument("\(environmentVariable) is '\(environment)'; expected 'packed' or 'openblas'")
        }
        return requested ?? backend
    }
}
