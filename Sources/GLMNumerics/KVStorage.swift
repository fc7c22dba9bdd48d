import CGLMKernels
import Glibc
import GLMSupport

/// The element type of a KV cache (keys and values chose theirs separately, as llama.cpp's -ctk/-ctv). The raw
/// values are glm.h's glm_kv_type and the kernels' GLM_KV_KIND_*.
public enum KVType: Int32, Sendable, CaseIterable {
    /// IEEE half (round to nearest even): half of f32's bytes, the default of the C API, Python and `glm serve`.
    case f16 = 0
    case bf16 = 1
    case f32 = 2
    /// ggml's Q8_0: 32 values share an f16 scale (34 bytes per 32 values); blocks restart at every head.
    case q8_0 = 3

    public var name: String {
        switch self {
        case .f16: return "f16"
        case .bf16: return "bf16"
        case .f32: return "f32"
        case .q8_0: return "q8_0"
        }
    }

    public init?(name: String) {
        guard let type = KVType.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    /// Bytes one head of `headDim` values takes in the cache.
    public func headBytes(headDim: Int) -> Int { Int(glm_kv_head_bytes(rawValue, headDim)) }
}

/// The converting KV kernels (Sources/CGLMKernels/kv_cache.c). Heads are addressed by byte pointers; `stride` is
/// the bytes from one position's row to the next.
public enum KVKernels {
    /// Converts `heads` heads of `headDim` f32 values at `source` into one cache row at `destination`.
    public static func store(_ type: KVType, _ source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer,
                             heads: Int, headDim: Int) {
        glm_kv_store(type.rawValue, source, destination, heads, headDim)
    }

    /// One cached head back to f32.
    public static func load(_ type: KVType, _ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>,
                            headDim: Int) {
        glm_kv_load(type.rawValue, source, destination, headDim)
    }

    /// `count` positions of one head to f32 rows `destination[s·ldd ...]` (glm_kv_load_rows); `stride`: bytes
    /// between positions.
    public static func loadRows(_ type: KVType, _ source: UnsafeRawPointer, stride: Int, count: Int,
                                into destination: UnsafeMutablePointer<Float>, ldd: Int, headDim: Int) {
        glm_kv_load_rows(type.rawValue, source, stride, count, destination, ldd, headDim)
    }
}

/// Owned, aligned bytes for a KV cache. `zero(workers:)` writes them (the session does it right after allocating):
/// a KV cache's memory is then resident from the moment its session exists, so that a session that fits is never
/// killed later for touching its cache, and the next session's memory check sees what this one holds (see
/// `MemoryLimit`). (MADV_HUGEPAGE on 2 MiB-aligned buffers was tried: session creation got slower here, 2.4 s
/// instead of 0.6 s for 0.8 GiB, the kernel compacting and clearing huge pages itself.)
public final class ByteBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutableRawPointer

    public init(count: Int, purpose: String) throws(GLMError) {
        var raw: UnsafeMutableRawPointer?
        guard count >= 0, posix_memalign(&raw, 64, max(count, 1)) == 0, let raw else {
            throw GLMError(.outOfMemory, "cannot allocate \(count) bytes for the \(purpose)")
        }
        self.count = count
        self.pointer = raw
    }

    deinit { free(pointer) }

    /// Zeroes every buffer of `buffers`, in 16 MiB pieces spread over `workers` (first-touch page faults run in
    /// parallel).
    public static func zero(_ buffers: [ByteBuffer], workers: Workers) {
        let piece = 16 << 20
        var pieces: [(UnsafeMutableRawPointer, Int)] = []
        for b in buffers {
            var offset = 0
            while offset < b.count {
                pieces.append((b.pointer + offset, min(piece, b.count - offset)))
                offset += piece
            }
        }
        pieces.withUnsafeBufferPointer { list in
            workers.run(tasks: list.count) { _, task in _ = memset(list[task].0, 0, list[task].1) }
        }
    }
}
