import CGLMHeader
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
public func glm_string_free(_ string: UnsafeMutablePointer<CChar>?) { free(string) }

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
