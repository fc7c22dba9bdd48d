// swift-tools-version: 6.2
// Programs built on libglm's public C ABI: the `glm` command line (chat, complete, info, bench, tokenize,
// detokenize, render, parse) and `glm serve`, an OpenAI-compatible HTTP server on Hummingbird.
//
// A package of its own, beside the library's: `swift test` on the library never resolves or builds SwiftNIO and
// Hummingbird (minutes on two cores), and these programs cannot import an engine module even by mistake: all they
// see is include/glm.h (the CGLM module) and the libglm.so that `make lib` built in ../build/lib.
import PackageDescription

let root = Context.packageDirectory + "/.."

let package = Package(
    name: "glm-apps",
    products: [
        .executable(name: "glm", targets: ["glm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No traits: swift-configuration support and full Foundation are not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Already Hummingbird's dependencies; named for the modules the server imports itself (ByteBuffer, Logger).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // include/glm.h as a module that links libglm.
        .systemLibrary(name: "CGLM", path: "Sources/CGLM"),
        // A thin Swift face over the C ABI (handles freed by deinit, statuses thrown, strings copied) and a small
        // order-preserving JSON value. Blocking calls only, no concurrency: the server decides where they run.
        .target(name: "GLMClient", dependencies: ["CGLM"]),
        // The OpenAI-compatible server: Hummingbird routes, slots (one glm_chat each, on a thread of its own),
        // the bounded queue, prefix-affinity scheduling, SSE streaming.
        .target(name: "GLMServer",
                dependencies: ["GLMClient",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "glm",
            dependencies: ["GLMClient", "GLMServer",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            linkerSettings: [
                // libglm.so from the library's release build; at run time from ../lib beside bin/glm, as the C
                // examples find it (build/bin and build/lib, or PREFIX/bin and PREFIX/lib after make install).
                .unsafeFlags(["-L\(root)/build/lib", "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN/../lib",
                              // Our executables use jemalloc (libglm.so itself must not).
                              "-Xlinker", "--no-as-needed", "-Xlinker", "-ljemalloc"]),
            ]),
    ],
    swiftLanguageModes: [.v5]
)
