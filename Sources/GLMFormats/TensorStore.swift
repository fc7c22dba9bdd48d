import GLMJSON
import GLMSupport

/// Every tensor of a model directory as published on the Hugging Face Hub, memory-mapped.
///
/// Which files are read, in order of preference:
/// 1. `model.safetensors.index.json` (sharded checkpoints): its `weight_map` (tensor → shard file name) names the
///    shards; every shard it names must exist and hold the tensors mapped to it.
/// 2. `model.safetensors` (single-file checkpoints).
/// 3. Otherwise every `*.safetensors` file of the directory.
/// A tensor name present in two files is an error: the checkpoint would be ambiguous.
public final class TensorStore: Sendable {
    public let directory: String
    /// The files read, in name order.
    public let files: [SafetensorsFile]
    /// All tensor names: files in name order, each in data order.
    public let names: [String]
    private let tensors: [String: TensorInfo]

    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    /// Maps and validates the checkpoint in `directory` (nothing is read beyond the headers).
    public init(directory: String) throws(GLMError) {
        guard FileSystem.isDirectory(directory) else {
            throw .io(FileSystem.exists(directory) ? "'\(directory)' is not a directory"
                                                   : "model directory '\(directory)' does not exist")
        }
        self.directory = directory
        let indexPath = FileSystem.join(directory, TensorStore.indexFileName)
        let singlePath = FileSystem.join(directory, TensorStore.singleFileName)

        var expected: [String: String] = [:]  // tensor -> shard file name, from the index
        var fileNames: [String]
        if FileSystem.exists(indexPath) {
            expected = try TensorStore.readIndex(indexPath)
            fileNames = Array(Set(expected.values)).sorted()
        } else if FileSystem.exists(singlePath) {
            fileNames = [TensorStore.singleFileName]
        } else {
            fileNames = try FileSystem.listDirectory(directory).filter { $0.hasSuffix(".safetensors") }
            if fileNames.isEmpty {
                throw .io("model directory '\(directory)' has no \(TensorStore.indexFileName),"
                    + " \(TensorStore.singleFileName) or other .safetensors file")
            }
        }

        var files: [SafetensorsFile] = []
        var names: [String] = []
        var tensors: [String: TensorInfo] = [:]
        for fileName in fileNames {
            let path = FileSystem.join(directory, fileName)
            if !expected.isEmpty && !FileSystem.exists(path) {
                let example = expected.first { $0.value == fileName }?.key ?? ""
                throw .io("'\(indexPath)' names shard '\(fileName)' (for tensor '\(example)'), but '\(path)' does not exist")
            }
            let file = try SafetensorsFile(path: path)
            files.append(file)
            for name in file.tensorNames {
                if let earlier = tensors[name] {
                    throw .format("tensor '\(name)' appears in two files: '\(earlier.file)' and '\(path)'")
                }
                guard let info = file.tensors[name] else { continue }
                tensors[name] = info
                names.append(name)
            }
        }
        // Every tensor the index maps to a shard must be in that shard (checked by name to give the shard's path).
        for (name, fileName) in expected.sorted(by: { $0.key < $1.key }) {
            let path = FileSystem.join(directory, fileName)
            if tensors[name]?.file != path {
                let actual = tensors[name].map { " (it is in '\($0.file)')" } ?? ""
                throw .format("'\(indexPath)' maps tensor '\(name)' to '\(fileName)', but that shard has no such"
                    + " tensor\(actual)")
            }
        }
        self.files = files
        self.names = names
        self.tensors = tensors
    }

    /// The tensor called `name`, if the checkpoint has it.
    public func tensor(_ name: String) -> TensorInfo? { tensors[name] }

    /// The tensor called `name`, checked against the shape and element types the model expects; the error names the
    /// tensor, its file and what was expected.
    public func require(_ name: String, shape: [Int], dtypes: Set<TensorDType>) throws(GLMError) -> TensorInfo {
        guard let info = tensors[name] else {
            throw .format("checkpoint '\(directory)' has no tensor '\(name)' (expected \(TensorStore.describe(dtypes))"
                + "\(shape); the checkpoint has \(tensors.count) tensors)")
        }
        guard info.shape == shape else {
            throw .format("tensor '\(name)' in '\(info.file)' has shape \(info.shape), expected \(shape)")
        }
        guard dtypes.contains(info.dtype) else {
            throw .unsupported("tensor '\(name)' in '\(info.file)' has dtype \(info.dtype.rawValue),"
                + " expected \(TensorStore.describe(dtypes))")
        }
        return info
    }

    /// Every shard's map.
    public var mappedFiles: [MappedFile] { files.map(\.mapping) }

    private static func describe(_ dtypes: Set<TensorDType>) -> String {
        let sorted = dtypes.map(\.rawValue).sorted()
        return sorted.count == 1 ? sorted[0] : "one of {" + sorted.joined(separator: ", ") + "}"
    }

    /// Reads `weight_map` of a sharded checkpoint's index. Shard names must be plain file names in the directory.
    private static func readIndex(_ path: String) throws(GLMError) -> [String: String] {
        let root: JSONValue
        do {
            root = try JSONValue.parse(FileSystem.readText(path), maxDepth: 64)
        } catch {
            throw GLMError(error.code, "'\(path)': \(error.message)")
        }
        guard case .object(let object) = root else { throw .format("'\(path)' is not a JSON object") }
        guard let mapValue = object["weight_map"] else { throw .format("'\(path)' has no \"weight_map\"") }
        guard case .object(let map) = mapValue else { throw .format("'\(path)': \"weight_map\" is not an object") }
        if map.isEmpty { throw .format("'\(path)': \"weight_map\" is empty") }
        var result: [String: String] = [:]
        for (name, value) in map {
            guard case .string(let fileName) = value else {
                throw .format("'\(path)': weight_map[\"\(name)\"] is \(value.compactJSON), expected a file name string")
            }
            guard !fileName.isEmpty, !fileName.contains("/"), fileName != ".", fileName != ".." else {
                throw .format("'\(path)': weight_map[\"\(name)\"] is \"\(fileName)\", expected a file name inside"
                    + " the model directory")
            }
            result[name] = fileName
        }
        return result
    }
}
