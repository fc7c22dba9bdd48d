import GLMFormats
import GLMSupport

/// A reference model of Tests/Fixtures/models/<name>/ (written by tools/make_reference_models.py with HF
/// transformers) and its reference outputs (reference.safetensors).
struct ReferenceModel {
    static let root: String = {
        // #filePath = .../Tests/GLMModelTests/ReferenceFixtures.swift
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/models"
    }()

    /// Every model directory of the fixtures (each must pass every test).
    static let names: [String] = (try? FileSystem.listDirectory(root).filter {
        FileSystem.exists(FileSystem.join(FileSystem.join(root, $0), "reference.safetensors"))
    }) ?? []

    let name: String
    let directory: String
    let reference: SafetensorsFile

    init(_ name: String) throws {
        self.name = name
        directory = FileSystem.join(ReferenceModel.root, name)
        reference = try SafetensorsFile(path: FileSystem.join(directory, "reference.safetensors"))
    }

    func has(_ tensor: String) -> Bool { reference.tensors[tensor] != nil }

    func floats(_ tensor: String) throws -> [Float] {
        guard let info = reference.tensors[tensor], info.dtype == .f32 else {
            throw GLMError.format("\(name): reference tensor '\(tensor)' missing or not F32")
        }
        return Array(info.bytes.bindMemory(to: Float.self))
    }

    func ints(_ tensor: String) throws -> [Int32] {
        guard let info = reference.tensors[tensor], info.dtype == .i32 else {
            throw GLMError.format("\(name): reference tensor '\(tensor)' missing or not I32")
        }
        return Array(info.bytes.bindMemory(to: Int32.self))
    }

    func shape(_ tensor: String) -> [Int] { reference.tensors[tensor]?.shape ?? [] }

    var tokens: [Int32] { get throws { try ints("tokens") } }

    /// Expert sets per row of reference tensor `experts.layer{l}` (or `mtp_experts`), sorted ascending.
    func expertSets(_ tensor: String) throws -> [[Int]] {
        let flat = try ints(tensor), k = shape(tensor).last ?? 1
        return stride(from: 0, to: flat.count, by: k).map { flat[$0..<($0 + k)].map(Int.init).sorted() }
    }
}

/// max |a − b| / max |b|: the error relative to the scale of the reference values.
func relativeError(_ a: some Collection<Float>, _ b: [Float]) -> Double {
    var worst = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        worst = max(worst, abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return scale > 0 ? worst / scale : worst
}

func maxAbsoluteError(_ a: some Collection<Float>, _ b: [Float]) -> Double {
    zip(a, b).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
}
