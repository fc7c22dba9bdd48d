import Glibc
import GLMSupport

/// An owned f32 array that never moves (64-byte aligned): activations, KV caches and scratch of a session.
///
/// Memory is not cleared: callers write before they read. Large buffers therefore cost address space, not
/// resident memory, until used (the kernel hands out zero pages on first touch).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats; an impossible or refused size is `.outOfMemory` naming `purpose`.
    public init(count: Int, purpose: String) throws(GLMError) {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        var raw: UnsafeMutableRawPointer?
        guard !overflow, count >= 0, posix_memalign(&raw, 64, bytes) == 0, let raw else {
            throw GLMError(.outOfMemory, "cannot allocate \(count) floats for the \(purpose)")
        }
        self.count = count
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(pointer) }
}
