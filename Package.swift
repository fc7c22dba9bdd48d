// swift-tools-version: 6.2
// libglm: an embeddable GLM-4.x MoE inference library with a C ABI.
import PackageDescription

// Instruction sets. Every vector loop is C in CGLMKernels, built for x86-64-v3 (AVX2/FMA/F16C; the AVX-512
// micro-kernel by a function attribute) and entered only after CPUFeatures confirmed the CPU runs it. All Swift
// code is built for baseline x86-64: a Swift module built for v3 emits shared copies of generic and inlinable
// stdlib functions (String, Array, ...) with BMI2/AVX instructions, and the linker keeps one copy for the whole
// library, so even the tokenizer would fault on an older CPU (seen: bzhi in String code under qemu Westmere).
// Swift SIMD types are therefore not used (without v3, SIMD8<Float>.addProduct lowers to fmaf calls).
let cFlags: [CSetting] = [.unsafeFlags(["-march=x86-64-v3", "-O3"])]

let package = Package(
    name: "libglm",
    products: [
        .library(name: "glm", type: .dynamic, targets: ["GLM"]),
    ],
    targets: [
        // The public header as a Clang module, so the Swift C-API checks itself against it.
        .systemLibrary(name: "CGLMHeader", path: "include"),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Hot loops that must compile to exact machine code (see ARCHITECTURE.md).
        .target(name: "CGLMKernels", cSettings: cFlags),

        // CPUID feature detection, baseline x86-64 (it decides whether the vector kernels may run at all).
        .target(name: "CGLMCPU"),

        // Errors, the pthread pool, memory-mapped files, CPU features and the kernel path.
        .target(name: "GLMSupport", dependencies: ["CGLMCPU"]),
        // Order-preserving JSON with Python json.dumps output.
        .target(name: "GLMJSON", dependencies: ["GLMSupport"]),
        // Jinja2 engine and chat-template rendering (transformers' apply_chat_template semantics).
        .target(name: "GLMTemplate", dependencies: ["GLMSupport", "GLMJSON"]),
        // GLM-4.7 reasoning and tool-call parsers, batch and streaming.
        .target(name: "GLMParsers", dependencies: ["GLMSupport", "GLMJSON"]),
        // safetensors, GGUF, config.json.
        .target(name: "GLMFormats", dependencies: ["GLMSupport", "GLMJSON"]),
        // Byte-level BPE tokenizer from tokenizer.json or GGUF metadata.
        .target(name: "GLMTokenizer", dependencies: ["GLMSupport", "GLMJSON", "GLMFormats"]),
        // Tensors over raw memory and kernels (OpenBLAS GEMM, norms, RoPE, softmax, SiLU).
        .target(name: "GLMNumerics", dependencies: ["GLMSupport", "COpenBLAS", "CGLMKernels"]),
        // The GLM-4 MoE forward pass, KV cache, MTP.
        .target(name: "GLMModel", dependencies: ["GLMSupport", "GLMJSON", "GLMFormats", "GLMNumerics"]),
        // Constrained decoding: JSON Schema, regular expressions and GLM tool calls compiled to token masks.
        .target(name: "GLMGrammar", dependencies: ["GLMSupport", "GLMJSON", "GLMParsers", "GLMTokenizer"]),
        // Sampling, stop rules, chat sessions with prefix reuse, streaming events, the OpenAI request/response shape.
        .target(name: "GLMGeneration",
                dependencies: ["GLMSupport", "GLMJSON", "GLMFormats", "GLMNumerics", "GLMTemplate", "GLMParsers",
                               "GLMTokenizer", "GLMModel", "GLMGrammar"]),
        // The C ABI: argument checks, error codes, ownership. No logic of its own.
        .target(name: "GLM",
                dependencies: ["CGLMHeader", "COpenBLAS", "GLMSupport", "GLMJSON", "GLMTemplate", "GLMParsers",
                               "GLMTokenizer", "GLMFormats", "GLMModel", "GLMGeneration", "GLMGrammar"],
                exclude: ["exports.map"],
                linkerSettings: [
                    // Export nothing but glm_* (the Swift runtime is linked in statically for release).
                    .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/GLM/exports.map"]),
                ]),

        // Benchmarks (release builds only; our executables use jemalloc, libglm.so must not).
        .executableTarget(name: "glm-bench",
                          dependencies: ["GLMSupport", "GLMJSON", "GLMTemplate", "GLMParsers", "GLMTokenizer",
                                         "GLMFormats", "GLMNumerics", "GLMModel", "GLMGeneration", "GLMGrammar"],
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--no-as-needed", "-Xlinker", "-ljemalloc"])]),

        .testTarget(name: "GLMSupportTests", dependencies: ["GLMSupport", "CGLMCPU"]),
        .testTarget(name: "GLMJSONTests", dependencies: ["GLMJSON", "GLMSupport"]),
        .testTarget(name: "GLMParsersTests", dependencies: ["GLMParsers", "GLMJSON", "GLMSupport"]),
        .testTarget(name: "GLMFormatsTests", dependencies: ["GLMFormats", "GLMSupport", "GLMJSON"]),
        .testTarget(name: "GLMTemplateTests", dependencies: ["GLMTemplate", "GLMJSON", "GLMSupport"]),
        .testTarget(name: "GLMTokenizerTests", dependencies: ["GLMTokenizer", "GLMFormats", "GLMJSON", "GLMSupport"]),
        .testTarget(name: "GLMGenerationTests",
                    dependencies: ["GLMGeneration", "GLMJSON", "GLMSupport", "GLMFormats", "GLMTemplate", "GLMParsers",
                                   "GLMTokenizer", "GLMModel", "GLMNumerics"]),
        .testTarget(name: "GLMGrammarTests",
                    dependencies: ["GLMGrammar", "GLMJSON", "GLMSupport", "GLMTokenizer", "GLMParsers"]),
        .testTarget(name: "GLMNumericsTests", dependencies: ["GLMNumerics", "GLMSupport"]),
        .testTarget(name: "GLMModelTests", dependencies: ["GLMModel", "GLMFormats", "GLMNumerics", "GLMSupport", "GLMJSON"]),
    ],
    swiftLanguageModes: [.v5]
)

// libFuzzer targets (Fuzz/, `make fuzz`): declared only when GLM_FUZZ=1, so `swift build` and `swift test` never
// build them (they need libFuzzer's driver, which only a `-sanitize=fuzzer` build links; the Makefile builds them
// in their own scratch directory with coverage and AddressSanitizer).
if Context.environment["GLM_FUZZ"] == "1" {
    package.targets += [
        .target(name: "CFuzzSupport", path: "Fuzz/Sources/CFuzzSupport"),
        .executableTarget(name: "glm-fuzz",
                          dependencies: ["CFuzzSupport", "GLMSupport", "GLMJSON", "GLMTemplate", "GLMParsers",
                                         "GLMFormats", "GLMTokenizer", "GLMGeneration", "GLMModel"],
                          path: "Fuzz/Sources/glm-fuzz"),
    ]
}
