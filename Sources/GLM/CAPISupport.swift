import CGLMHeader
import GLMSupport
import GLMJSON
import Glibc

// Shared plumbing of the C API: thread-local errors, status mapping, C string conversion and ownership.
// Every exported function is a thin shell: check arguments, call the Swift API, map errors to a status.

/// Per-thread storage of the last error message (a malloc'd C string owned by the thread's slot).
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    static func set(_ message: String) {
        let copy = strdup(message)
        let old = pthread_getspecific(key)
        pthread_setspecific(key, copy)
        free(old)
    }

    static var current: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }
}

extension glm_status {
    init(_ code: GLMError.Code) {
        self.init(rawValue: UInt32(code.rawValue))
    }
}

/// Runs `body`, turning a thrown GLMError into its status and recording its message for glm_last_error().
func withStatus(_ body: () throws(GLMError) -> Void) -> glm_status {
    do {
        try body()
        return GLM_OK
    } catch {
        LastError.set(error.message)
        return glm_status(error.code)
    }
}

/// Fails with GLM_ERR_INVALID_ARGUMENT naming the parameter if `pointer` is NULL.
func required<T>(_ pointer: T?, _ name: String) throws(GLMError) -> T {
    guard let pointer else { throw .invalidArgument("\(name) must not be NULL") }
    return pointer
}

/// A NUL-terminated UTF-8 argument as a Swift String; invalid UTF-8 is an error naming the parameter.
func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(GLMError) -> String {
    let p = try required(pointer, name)
    guard let s = String(validatingCString: p) else { throw .invalidArgument("\(name) is not valid UTF-8") }
    return s
}

/// An optional NUL-terminated UTF-8 argument (NULL means absent).
func optionalString(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(GLMError) -> String? {
    guard let pointer else { return nil }
    return try string(pointer, name)
}

/// Parses an optional JSON argument; NULL or an empty string means absent.
func optionalJSON(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(GLMError) -> JSONValue? {
    guard let text = try optionalString(pointer, name), !text.isEmpty else { return nil }
    do {
        return try JSONValue.parse(text)
    } catch {
        throw .invalidArgument("\(name): \(error.message)")
    }
}

/// Parses a required JSON argument.
func requiredJSON(_ pointer: UnsafePointer<CChar>?, _ name: String) throws(GLMError) -> JSONValue {
    guard let value = try optionalJSON(try required(pointer, name), name) else {
        throw .invalidArgument("\(name) must not be empty")
    }
    return value
}

/// A malloc'd NUL-terminated copy of `s` for the caller (freed with glm_free).
func mallocString(_ s: String) throws(GLMError) -> UnsafeMutablePointer<CChar> {
    var utf8 = Array(s.utf8)
    utf8.append(0)
    guard let p = malloc(utf8.count)?.assumingMemoryBound(to: CChar.self) else {
        throw GLMError(.outOfMemory, "cannot allocate \(utf8.count) bytes for a result string")
    }
    utf8.withUnsafeBytes { raw in
        if let base = raw.baseAddress { memcpy(p, base, raw.count) }
    }
    return p
}

/// A malloc'd copy of an array for the caller (freed with glm_free). An empty array gives a valid 1-byte block.
func mallocArray<T>(_ values: [T]) throws(GLMError) -> UnsafeMutablePointer<T> {
    let bytes = max(1, values.count * MemoryLayout<T>.stride)
    guard let raw = malloc(bytes) else { throw GLMError(.outOfMemory, "cannot allocate \(bytes) bytes for a result array") }
    let p = raw.bindMemory(to: T.self, capacity: max(1, values.count))
    values.withUnsafeBufferPointer { buffer in
        if let base = buffer.baseAddress { p.initialize(from: base, count: buffer.count) }
    }
    return p
}

/// Writes a result string to a required out-parameter.
func writeResult(_ s: String, to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws(GLMError) {
    out.pointee = try mallocString(s)
}

/// Opaque C handles are retained Swift objects. A handle of the wrong kind (or garbage that happens to be a
/// Swift object) is caught by the type check where possible; a freed or forged pointer cannot be detected, as
/// with any C API.
enum Handle {
    static func retain(_ object: AnyObject) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(object).toOpaque())
    }

    static func get<T: AnyObject>(_ handle: OpaquePointer?, _ name: String) throws(GLMError) -> T {
        guard let handle else { throw .invalidArgument("\(name) must not be NULL") }
        let object = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
        guard let typed = object as? T else { throw .invalidArgument("\(name) is not a \(T.self) handle") }
        return typed
    }

    static func release<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
        guard let handle else { return }
        Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle)).release()
    }
}

/// The object behind a handle whose calls run one at a time (chat, session, stream parser) with its gate.
/// Such a handle is `Handle.retain(Exclusive(object))`; its functions reach the object through `Handle.use`
/// and free it with `Handle.releaseExclusive`.
final class Exclusive<Value: AnyObject> {
    let value: Value
    let gate = CallGate()

    init(_ value: Value) { self.value = value }
}

extension Handle {
    /// Runs `body` on the object behind an exclusive handle. A call while another one runs on the same handle
    /// (from another thread, or re-entered from the running call's callback) is GLM_ERR_INVALID_ARGUMENT: the
    /// object's state belongs to the running call. If the handle was freed while `body` ran, it is released
    /// when `body` returns.
    static func use<T: AnyObject, R>(_ handle: OpaquePointer?, _ name: String,
                                     _ body: (Exclusive<T>) throws(GLMError) -> R) throws(GLMError) -> R {
        guard let handle else { throw .invalidArgument("\(name) must not be NULL") }
        let object = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
        guard let exclusive = object as? Exclusive<T> else {
            throw .invalidArgument("\(name) is not a \(T.self) handle")
        }
        guard exclusive.gate.enter() else {
            throw .invalidArgument("\(name) is in use by another call: a \(name) runs one call at a time, so a call"
                + " from another thread, or from the running call's own callback, is refused")
        }
        defer {
            if exclusive.gate.leave() { Unmanaged.passUnretained(exclusive).release() }
        }
        return try body(exclusive)
    }

    /// Frees an exclusive handle: now if no call runs on it, else when the running call returns.
    static func releaseExclusive<T: AnyObject>(_ handle: OpaquePointer?, as type: T.Type) {
        guard let handle else { return }
        let object = Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
        // A handle of another kind is not released: this function does not own it.
        guard let exclusive = object as? Exclusive<T> else { return }
        if exclusive.gate.requestRelease() { Unmanaged.passUnretained(exclusive).release() }
    }
}
