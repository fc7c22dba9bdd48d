// swift-tools-version: 6.2
// libglm: an embeddable GLM-4.x MoE inference library with a C ABI.
import PackageDescription

// -march=x86-64-v3: AVX2/FMA/F16C. Without it SIMD8<Float>.addProduct lowers to fmaf calls (measured 13x slower).
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
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

        // Errors, the pthread pool, memory-mapped files. No dependencies.
        .target(name: "GLMSupport", swiftSettings: simdFlags),
        // Order-preserving JSON with Python json.dumps output.
        .target(name: "GLMJSON", dependencies: ["GLMSupport"], swiftSettings: simdFlags),
        // Jinja2 engine and chat-template rendering (transformers' apply_chat_template semantics).
        .target(name: "GLMTemplate", dependencies: ["GLMSupport", "GLMJSON"], swiftSettings: simdFlags),
        // GLM-4.7 reasoning and tool-call parsers, batch and streaming.
        .target(name: "GLMParsers", dependencies: ["GLMSupport", "GLMJSON"], swiftSettings: simdFlags),
        // safetensors, GGUF, config.json.
        .target(name: "GLMFormats", dependencies: ["GLMSupport", "GLMJSON"], swiftSettings: simdFlags),
        // Byte-level BPE tokenizer from tokenizer.json or GGUF metadata.
        .target(name: "GLMTokenizer", dependencies: ["GLMSupport", "GLMJSON", "GLMFormats"], swiftSettings: simdFlags),
        // Tensors over raw memory and kernels (OpenBLAS GEMM, norms, RoPE, softmax, SiLU).
        .target(name: "GLMNumerics", dependencies: ["GLMSupport", "COpenBLAS", "CGLMKernels"], swiftSettings: simdFlags),
        // The GLM-4 MoE forward pass, KV cache, MTP.
        .target(name: "GLMModel", dependencies: ["GLMSupport", "GLMJSON", "GLMFormats", "GLMNumerics"],
                swiftSettings: simdFlags),
        // Sampling, stop rules, chat sessions with prefix reuse, streaming events, the OpenAI request/response shape.
        .target(name: "GLMGeneration",
                dependencies: ["GLMSupport", "GLMJSON", "GLMFormats", "GLMNumerics", "GLMTemplate", "GLMParsers",
                               "GLMTokenizer", "GLMModel"],
                swiftSettings: simdFlags),
        // The C ABI: argument checks, error codes, ownership. No logic of its own.
        .target(name: "GLM",
                dependencies: ["CGLMHeader", "GLMSupport", "GLMJSON", "GLMTemplate", "GLMParsers",
                               "GLMTokenizer", "GLMFormats", "GLMModel", "GLMGeneration"],
                exclude: ["exports.map"],
                swiftSettings: simdFlags,
                linkerSettings: [
                    // Export nothing but glm_* (the Swift runtime is linked in statically for release).
                    .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/GLM/exports.map"]),
                ]),

        // Benchmarks (release builds only; our executables use jemalloc, libglm.so must not).
        .executableTarget(name: "glm-bench",
                          dependencies: ["GLMSupport", "GLMJSON", "GLMTemplate", "GLMParsers", "GLMTokenizer",
                                         "GLMFormats", "GLMNumerics", "GLMModel", "GLMGeneration"],
                          swiftSettings: simdFlags,
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--no-as-needed", "-Xlinker", "-ljemalloc"])]),

        .testTarget(name: "GLMSupportTests", dependencies: ["GLMSupport"], swiftSettings: simdFlags),
        .testTarget(name: "GLMJSONTests", dependencies: ["GLMJSON"], swiftSettings: simdFlags),
        .testTarget(name: "GLMParsersTests", dependencies: ["GLMParsers", "GLMJSON", "GLMSupport"],
                    swiftSettings: simdFlags),
        .testTarget(name: "GLMFormatsTests", dependencies: ["GLMFormats", "GLMSupport", "GLMJSON"],
                    swiftSettings: simdFlags),
        .testTarget(name: "GLMTemplateTests", dependencies: ["GLMTemplate", "GLMJSON", "GLMSupport"],
                    swiftSettings: simdFlags),
        .testTarget(name: "GLMTokenizerTests", dependencies: ["GLMTokenizer", "GLMFormats", "GLMJSON", "GLMSupport"],
                    swiftSettings: simdFlags),
        .testTarget(name: "GLMGenerationTests",
                    dependencies: ["GLMGeneration", "GLMJSON", "GLMSupport", "GLMFormats", "GLMTemplate", "GLMParsers",
                                   "GLMTokenizer", "GLMModel"],
                    swiftSettings: simdFlags),
        .testTarget(name: "GLMNumericsTests", dependencies: ["GLMNumerics"], swiftSettings: simdFlags),
        .testTarget(name: "GLMModelTests", dependencies: ["GLMModel", "GLMFormats", "GLMNumerics", "GLMSupport"],
                    swiftSettings: simdFlags),
    ],
    swiftLanguageModes: [.v5]
)
