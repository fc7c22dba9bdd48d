import GLMSupport

/// Element types of a safetensors file, spelled as in its header.
///
/// Quantised formats are added as more cases, never by changing `TensorInfo`: a type whose elements are not whole
/// bytes (a block format such as Q4_0, or F4) would declare its block (`elements per block`, `bytes per block`)
/// and `TensorInfo.byteCount(...)` would divide by the block instead of multiplying by `byteSize`.
public enum TensorDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element (also the alignment the loader guarantees for the tensor's first byte).
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    /// Dtype names the safetensors format defines that this library does not read yet (sub-byte and exotic types).
    static let knownUnsupported: Set<String> = ["F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]
}

/// One tensor of a checkpoint: its name, element type, shape, and its bytes *in place* in the memory-mapped file.
///
/// The bytes are never copied: `bytes` points into the file's map, which this value keeps alive (a `TensorInfo`
/// stays valid after its `SafetensorsFile`/`TensorStore` is released). The loader has checked that `bytes.count ==
/// elementCount × dtype.byteSize` and that `bytes.baseAddress` is aligned to `dtype.byteSize`, so the data may be
/// read through typed pointers. Layout is row-major (C order), little-endian, as safetensors defines.
///
/// Quantised checkpoints need no new fields here: an FP8 weight is a `TensorInfo` of dtype `.f8e4m3`, and its scale is
/// a *sibling* tensor found by name (`X.weight_scale` per channel `[out, 1]` or per tensor `[1]`, compressed-tensors;
/// `X.weight_scale_inv` per 128×128 block `[ceil(out/128), ceil(in/128)]`, the "fp8" format). The model layer pairs
/// them with `TensorStore.tensor(_:)` and chooses the dequantisation from the scale's shape (see docs/MODEL.md §4).
public struct TensorInfo: @unchecked Sendable {
    // @unchecked: `bytes` points into a read-only map that `mapping` keeps alive; nothing ever writes through it.
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]
    /// The tensor's bytes inside the map (bounds and alignment checked at load).
    public let bytes: UnsafeRawBufferPointer
    /// The file that holds the tensor.
    public let file: String
    /// Absolute byte offset of the first byte in `file`.
    public let fileOffset: Int
    /// The map that owns `bytes`.
    public let mapping: MappedFile

    init(name: String, dtype: TensorDType, shape: [Int], bytes: UnsafeRawBufferPointer, fileOffset: Int,
         mapping: MappedFile) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.file = mapping.path
        self.fileOffset = fileOffset
        self.mapping = mapping
    }

    /// Number of elements (the product of `shape`; 1 for a scalar). Cannot overflow: checked at load.
    public var elementCount: Int { shape.reduce(1, *) }

    /// `"BF16[4096, 5120]"`: the form error messages use.
    public var typeDescription: String { "\(dtype.rawValue)\(shape)" }

    /// The product of `shape` and that times `byteSize`, or nil if either overflows `Int` or a dimension is negative.
    static func byteCount(shape: [Int], dtype: TensorDType) -> (elements: Int, bytes: Int)? {
        var elements = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        return overflow ? nil : (elements, bytes)
    }
}
