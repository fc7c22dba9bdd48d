import CGLMCPU
#if canImport(Glibc)
import Glibc
#endif

/// What the processor can run, read once with CPUID (CGLMCPU, built for baseline x86-64 so that asking never
/// needs the features asked about).
///
/// Only GLMNumerics, GLMModel, GLMGeneration and the kernels are compiled for x86-64-v3 (AVX2, FMA, F16C);
/// everything that does not compute (JSON, templates, parsers, tokenizer, formats, the C API) is baseline
/// x86-64 and runs anywhere. Loading a model checks `CPUFeatures.host` first, so an older CPU gets
/// GLM_ERR_UNSUPPORTED naming what is missing instead of SIGILL.
public struct CPUFeatures: Sendable, Equatable {
    public let bits: UInt32
    public let brand: String
    public let vendor: String

    public static let host = CPUFeatures()

    /// A described CPU (tests of the path choice for processors other than this one).
    public init(bits: UInt32, brand: String = "", vendor: String = "") {
        self.bits = bits
        self.brand = brand
        self.vendor = vendor
    }

    private init() {
        bits = glm_cpu_features()
        var brandBuffer = [CChar](repeating: 0, count: 64)
        glm_cpu_brand(&brandBuffer, brandBuffer.count)
        brand = String(decoding: brandBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var vendorBuffer = [CChar](repeating: 0, count: 13)
        glm_cpu_vendor(&vendorBuffer)
        vendor = String(decoding: vendorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Every feature libglm looks at, by the name Linux's /proc/cpuinfo gives it.
    public static let names: [(name: String, bit: UInt32)] = [
        ("avx", UInt32(GLM_CPU_AVX)), ("avx2", UInt32(GLM_CPU_AVX2)), ("fma", UInt32(GLM_CPU_FMA)),
        ("f16c", UInt32(GLM_CPU_F16C)), ("avx512f", UInt32(GLM_CPU_AVX512F)), ("avx512bw", UInt32(GLM_CPU_AVX512BW)),
        ("avx512vl", UInt32(GLM_CPU_AVX512VL)), ("avx512dq", UInt32(GLM_CPU_AVX512DQ)),
        ("avx512_vnni", UInt32(GLM_CPU_AVX512_VNNI)), ("avx512_bf16", UInt32(GLM_CPU_AVX512_BF16)),
        ("avx_vnni", UInt32(GLM_CPU_AVX_VNNI)),
    ]

    public func has(_ name: String) -> Bool {
        CPUFeatures.names.first { $0.name == name }.map { bits & $0.bit != 0 } ?? false
    }

    /// The features present, in `names` order.
    public var present: [String] { CPUFeatures.names.filter { bits & $0.bit != 0 }.map(\.name) }

    /// What every kernel needs (x86-64-v3's vector part): the forward pass runs only when none is missing.
    public static let required = ["avx", "avx2", "fma", "f16c"]
    public var missingForKernels: [String] { CPUFeatures.required.filter { !has($0) } }
}

/// Which instruction set the forward pass's kernels use. Results are identical on both paths (the GEMM
/// micro-kernels sum in the same order) except for bf16 weights under `BF16Inputs.bf16` on a CPU with AVX-512 BF16,
/// where the avx512 path multiplies with vdpbf16ps in its own order; the AVX-512 path is faster where the CPU has it.
public enum KernelPath: String, Sendable, CaseIterable {
    /// AVX2 + FMA + F16C everywhere: decode row kernels and the 6×16 GEMM micro-kernel.
    case avx2
    /// As `avx2`, with the GEMM's 12×32 AVX-512 micro-kernel (needs AVX-512F) and, where the CPU also has AVX-512
    /// VNNI (and VL), the block-quantised weights' prefill panels and Q8_0-activation row kernels summed with vpdpbusd
    /// (quantdot_vnni.c), and where it has AVX-512 BF16, bf16 weights with bf16 inputs by vdpbf16ps (bf16dot.c).
    case avx512

    /// The environment variable that picks a path when the caller does not: `avx2`, `avx512` or `auto`.
    /// Set `GLM_KERNELS=avx2` to run (and test) the AVX2 path on an AVX-512 machine.
    public static let environmentVariable = "GLM_KERNELS"

    public static var environmentValue: String? { getenv(environmentVariable).map { String(cString: $0) } }

    /// The paths this CPU can run (empty when it lacks AVX2/FMA/F16C).
    public static func available(on cpu: CPUFeatures = .host) -> [KernelPath] {
        guard cpu.missingForKernels.isEmpty else { return [] }
        return cpu.has("avx512f") ? [.avx2, .avx512] : [.avx2]
    }

    /// The path a model runs: `requested` if the caller chose one (an explicit choice wins over the environment),
    /// else `GLM_KERNELS` if set, else the fastest this CPU has. A CPU without AVX2/FMA/F16C, or a requested path
    /// the CPU lacks, is `.unsupported` naming the missing features; a bad `GLM_KERNELS` is `.invalidArgument`.
    public static func resolve(_ requested: KernelPath?, environment: String? = environmentValue,
                               cpu: CPUFeatures = .host) throws(GLMError) -> KernelPath {
        let missing = cpu.missingForKernels
        guard missing.isEmpty else {
            let name = cpu.brand.isEmpty ? "this CPU" : "this CPU (\(cpu.brand))"
            throw .unsupported("\(name) lacks \(missing.joined(separator: ", ")): libglm's kernels need AVX2, FMA "
                + "and F16C (x86-64-v3: Intel Haswell, AMD Zen or later)")
        }
        var choice = requested
        if choice == nil, let environment, !environment.isEmpty, environment.lowercased() != "auto" {
            guard let named = KernelPath(rawValue: environment.lowercased()) else {
                throw .invalidArgument("\(environmentVariable) is '\(environment)'; expected 'avx2', 'avx512' or 'auto'")
            }
            choice = named
        }
        let best: KernelPath = cpu.has("avx512f") ? .avx512 : .avx2
        guard let choice else { return best }
        if choice == .avx512 && !cpu.has("avx512f") {
            throw .unsupported("the avx512 kernel path needs AVX-512F, which \(cpu.brand.isEmpty ? "this CPU" : cpu.brand) lacks")
        }
        return choice
    }
}
