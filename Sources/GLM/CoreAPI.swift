import CGLMHeader
import COpenBLAS
import GLMJSON
import GLMSupport
import Glibc

// Version, errors, memory and threads.

private let versionCString: StaticString = "0.1.0"
private let emptyCString: StaticString = ""

@c @implementation
public func glm_version() -> UnsafePointer<CChar>! {
    UnsafeRawPointer(versionCString.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation
public func glm_api_version() -> Int32 { LibraryVersion.api }

@c @implementation
public func glm_last_error() -> UnsafePointer<CChar>! {
    LastError.current ?? UnsafeRawPointer(emptyCString.utf8Start).assumingMemoryBound(to: CChar.self)
}

private let statusNames: [StaticString] = [
    "GLM_OK", "GLM_ERR_INVALID_ARGUMENT", "GLM_ERR_IO", "GLM_ERR_FORMAT", "GLM_ERR_UNSUPPORTED",
    "GLM_ERR_OUT_OF_MEMORY", "GLM_ERR_CANCELLED", "GLM_ERR_CONTEXT_FULL", "GLM_ERR_TEMPLATE",
    "GLM_ERR_LIMIT_EXCEEDED", "GLM_ERR_INTERNAL",
]
private let unknownStatusName: StaticString = "GLM_UNKNOWN_STATUS"

@c @implementation
public func glm_status_name(_ status: glm_status) -> UnsafePointer<CChar>! {
    let index = Int(status.rawValue)
    let name = index < statusNames.count ? statusNames[index] : unknownStatusName
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation
public func glm_free(_ pointer: UnsafeMutableRawPointer?) { free(pointer) }

@c @implementation
public func glm_set_default_threads(_ threads: Int32) -> glm_status {
    withStatus { () throws(GLMError) in
        guard threads >= 1 && threads <= 1024 else {
            throw .invalidArgument("threads must be 1...1024, got \(threads)")
        }
        Threads.defaultCount = Int(threads)
    }
}

@c @implementation
public func glm_default_threads() -> Int32 { Int32(Threads.defaultCount) }

@c @implementation
public func glm_system_info(_ out_info_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> glm_status {
    withStatus { () throws(GLMError) in
        let out = try required(out_info_json, "out_info_json")
        try writeResult(systemInfo().compactJSON, to: out)
    }
}

/// glm_system_info's document. Everything here runs on baseline x86-64 (this target is not built for v3).
private func systemInfo() -> JSONValue {
    let cpu = CPUFeatures.host
    func optionalString(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
    var cpuInfo = JSONObject()
    cpuInfo["vendor"] = .string(cpu.vendor)
    cpuInfo["brand"] = .string(cpu.brand)
    cpuInfo["features"] = .array(cpu.present.map(JSONValue.string))
    var kernels = JSONObject()
    kernels["supported"] = .bool(cpu.missingForKernels.isEmpty)
    kernels["missing"] = .array(cpu.missingForKernels.map(JSONValue.string))
    kernels["available"] = .array(KernelPath.available(on: cpu).map { .string($0.rawValue) })
    kernels["default"] = (try? KernelPath.resolve(nil)).map { .string($0.rawValue) } ?? .null
    kernels["environment"] = optionalString(KernelPath.environmentValue)
    var gemm = JSONObject()
    gemm["environment"] = optionalString(getenv("GLM_GEMM").map { String(cString: $0) })
    var openBLAS = JSONObject()
    openBLAS["core"] = .string(openblas_get_corename().map { String(cString: $0) } ?? "unknown")
    var info = JSONObject()
    info["version"] = .string(LibraryVersion.string)
    info["api_version"] = JSONValue(Int(LibraryVersion.api))
    info["cpu"] = .object(cpuInfo)
    info["kernels"] = .object(kernels)
    info["gemm"] = .object(gemm)
    info["openblas"] = .object(openBLAS)
    info["default_threads"] = JSONValue(Threads.defaultCount)
    return .object(info)
}
