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

    /// One KV head of a cache side as attention reads it: its `type`, the head at position 0, and the bytes from one
    /// position's row to the next.
    public struct Head {
        public let type: KVType
        public let base: UnsafeRawPointer
        public let stride: Int

        public init(type: KVType, base: UnsafeRawPointer, stride: Int) {
            self.type = type
            self.base = base
            self.stride = stride
        }
    }

    /// Where stacked row i of a few-row attention call reads its query or writes its output:
    /// `base + (i / group) · tokenStride + (i % group) · headStride` floats.
    public struct Rows<Pointer> {
        public let base: Pointer
        public let tokenStride, headStride: Int

        public init(_ base: Pointer, tokenStride: Int, headStride: Int) {
            self.base = base
            self.tokenStride = tokenStride
            self.headStride = headStride
        }
    }

    /// Floats of scratch `attendRows` needs for `rows` stacked rows of `headDim`.
    public static func attendRowsScratchCount(headDim: Int, rows: Int) -> Int {
        Int(glm_attend_rows_scratch_floats(headDim, rows))
    }

    /// Decode / verification attention of `rows` stacked query rows (token i / group, head i % group of one KV
    /// head) over the positions `positions`, row i seeing those below `firstLimit + i / group` (glm_attend_rows,
    /// Sources/CGLMKernels/attention.c): normalised output, or with `partial` the accumulator, running max and sum
    /// ([headDim + 2] per row) for a split-K merge. Bit-identical for any row count and on both kernel paths.
    public static func attendRows(keys: Head, values: Head, headDim: Int, rows: Int, group: Int,
                                  query: Rows<UnsafePointer<Float>>, firstLimit: Int, positions: Range<Int>,
                                  scale: Float, output: Rows<UnsafeMutablePointer<Float>>, partial: Bool,
                                  scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        var args = glm_attend_rows_args()
        args.key_kind = keys.type.rawValue
        args.value_kind = values.type.rawValue
        args.keys = keys.base
        args.values = values.base
        args.key_stride = keys.stride
        args.value_stride = values.stride
        args.key_head_bytes = keys.type.headBytes(headDim: headDim)
        args.value_head_bytes = values.type.headBytes(headDim: headDim)
        args.head_dim = headDim
        args.rows = rows
        args.group = group
        args.query = query.base
        args.query_token_stride = query.tokenStride
        args.query_head_stride = query.headStride
        args.first_limit = firstLimit
        args.first = positions.lowerBound
        args.end = positions.upperBound
        args.scale = scale
        args.output = output.base
        args.output_token_stride = output.tokenStride
        args.output_head_stride = output.headStride
        args.partial = partial ? 1 : 0
        glm_attend_rows(&args, scratch, path == .avx512 ? 1 : 0)
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
