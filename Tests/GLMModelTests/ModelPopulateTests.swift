import Glibc
import GLMModel
import GLMSupport
import Testing

/// `Model.load(populate: true)` (C: glm_model_params.populate): every page of the model's files mapped into the
/// process before the load returns, and the model the same as without it.
@Suite struct ModelPopulateTests {
    /// Resident and total kB of each mapping of `path` in this process (/proc/self/smaps).
    static func mappings(of path: String) throws -> [(rss: Int, size: Int)] {
        // Read to the end in pieces: a /proc file reports size 0, so whole-file readers may stop early.
        guard let f = fopen("/proc/self/smaps", "r") else { throw GLMError.io("cannot open /proc/self/smaps") }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        var result: [(rss: Int, size: Int)] = []
        var inFile = false
        var size = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {   // a mapping's header line
                inFile = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inFile, fields.first == "Size:", fields.count >= 2 {
                size = Int(fields[1]) ?? 0
            } else if inFile, fields.first == "Rss:", fields.count >= 2 {
                result.append((Int(fields[1]) ?? 0, size))
            }
        }
        return result
    }

    @Test(arguments: [("glm47", ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]),
                      ("glm-tiny-gguf/glm-tiny-bf16-00001-of-00002.gguf",
                       ["glm-tiny-bf16-00001-of-00002.gguf", "glm-tiny-bf16-00002-of-00002.gguf"])])
    func populateMapsEveryPageAndChangesNothing(model: String, files: [String]) throws {
        let path = FileSystem.join(ReferenceModel.root, model)
        let lazy = try Model.load(directory: path, threads: 2)
        let populated = try Model.load(directory: path, threads: 2, populate: true)
        let directory = model.hasSuffix(".gguf") ? FileSystem.join(ReferenceModel.root, "glm-tiny-gguf") : path
        for file in files {
            // Some mapping of the file is wholly resident: the populated model's (another test's may be too).
            let maps = try ModelPopulateTests.mappings(of: FileSystem.join(directory, file))
            #expect(maps.contains { $0.size > 0 && $0.rss >= $0.size }, "\(model): \(file): \(maps)")
        }
        let tokens: [Int32] = (0..<12).map { Int32(($0 * 37 + 5) % lazy.config.vocabSize) }
        let a = try Session(model: lazy, contextLength: 16).evaluate(tokens: tokens, logits: .all)
        let b = try Session(model: populated, contextLength: 16).evaluate(tokens: tokens, logits: .all)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }
}
