import GLMSupport

/// How a weight tensor's elements are stored: a safetensors dtype, or a ggml type of a GGUF file (block formats
/// included). The model loader switches on this, not on the file format.
public enum TensorEncoding: Equatable, Sendable, CustomStringConvertible {
    case dtype(TensorDType)
    case ggml(GGMLType)

    /// "BF16", "Q8_0", ...: the name error messages and `glm_model_info` use.
    public var description: String {
        switch self {
        case .dtype(let d): return d.rawValue
        case .ggml(let t): return t.name
        }
    }

    /// Bytes of one row of `columns` elements, or nil if `columns` is not a whole number of blocks.
    public func rowBytes(columns: Int) -> Int? {
        switch self {
        case .dtype(let d): return columns * d.byteSize
        case .ggml(let t): return columns % t.blockSize == 0 ? columns / t.blockSize * t.bytesPerBlock : nil
        }
    }
}

/// One weight tensor under its Hugging Face name, wherever it comes from: a safetensors tensor as it is, or a view
/// of a GGUF tensor (GGUF stores routed experts stacked in one 3-D tensor, and may fuse q/k/v or gate/up; each
/// expert's or projection's rows are a contiguous byte range of it, so the view is a pointer, never a copy).
/// `shape` is row-major (the Hugging Face order: `[out, in]`), `bytes` lies in a map that `mapping` keeps alive.
public struct ModelTensor: @unchecked Sendable {
    // @unchecked: `bytes` points into a read-only map that `mapping` keeps alive.
    public let name: String
    public let encoding: TensorEncoding
    public let shape: [Int]
    public let bytes: UnsafeRawBufferPointer
    public let mapping: MappedFile
    /// Where it comes from, for messages: "'file'" or "GGUF tensor 'blk.3.ffn_up_exps.weight' (expert 5) in 'file'".
    public let origin: String
    /// The tensor of the file it is part of (the safetensors or GGUF name): the unit "unused tensor" errors name.
    public let sourceName: String

    public init(name: String, encoding: TensorEncoding, shape: [Int], bytes: UnsafeRawBufferPointer,
                mapping: MappedFile, origin: String, sourceName: String) {
        self.name = name
        self.encoding = encoding
        self.shape = shape
        self.bytes = bytes
        self.mapping = mapping
        self.origin = origin
        self.sourceName = sourceName
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var typeDescription: String { "\(encoding)\(shape)" }
}

/// The tensors of a checkpoint by Hugging Face name: a safetensors `TensorStore` or a GGUF model (`GGUFModel`).
public protocol ModelTensorSource: AnyObject, Sendable {
    /// Where the checkpoint is (a directory or a file), for messages.
    var location: String { get }
    /// Every tensor name, in a stable order.
    var tensorNames: [String] { get }
    func modelTensor(_ name: String) -> ModelTensor?
    /// The mapped files the tensors point into.
    var mappedFiles: [MappedFile] { get }
}

extension ModelTensorSource {
    /// Bytes of all mapped files (headers included); virtual memory, not resident memory.
    public var bytesMapped: Int { mappedFiles.reduce(0) { $0 + $1.count } }

    /// Asks the kernel to start reading every file (before a scan over all weights).
    public func adviseWillNeed() { for file in mappedFiles { file.adviseWillNeed() } }
}

extension TensorStore: ModelTensorSource {
    public var location: String { directory }
    public var tensorNames: [String] { names }

    public func modelTensor(_ name: String) -> ModelTensor? {
        guard let info = tensor(name) else { return nil }
        return ModelTensor(name: name, encoding: .dtype(info.dtype), shape: info.shape, bytes: info.bytes,
                           mapping: info.mapping, origin: "'\(info.file)'", sourceName: name)
    }
}
