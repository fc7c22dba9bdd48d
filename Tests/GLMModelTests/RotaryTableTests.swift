import Testing
import GLMFormats
import GLMSupport
@testable import GLMModel

/// RoPE at long-context positions (up to GLM-4.7's 202,752) against transformers' Glm4MoeRotaryEmbedding
/// (Tests/Fixtures/rope, tools/make_rope_fixture.py): inv_freq and the f32 angles bit for bit, cos and sin within
/// one f32 ulp (torch's f32 cos/sin are not correctly rounded; libglm's are, from the same f32 angle).
@Suite struct RotaryTableTests {
    static let root: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)
        return parts.joined(separator: "/") + "/Fixtures/rope"
    }()

    static func floats(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
        guard let info = file.tensors[name], info.dtype == .f32 else { throw GLMError.format("no F32 \(name)") }
        return Array(info.bytes.bindMemory(to: Float.self))
    }

    /// One f32 ulp of x (the spacing of floats at |x|).
    static func ulp(_ x: Float) -> Float { abs(x).ulp }

    @Test(arguments: ["glm47", "rope_default"])
    func anglesCosAndSinMatchTransformersAtLongPositions(name: String) throws {
        let directory = FileSystem.join(RotaryTableTests.root, name)
        let config = try ModelConfig(contentsOf: FileSystem.join(directory, "config.json"))
        let file = try SafetensorsFile(path: FileSystem.join(directory, "rope.safetensors"))
        guard let positionInfo = file.tensors["positions"], positionInfo.dtype == .i32 else {
            throw GLMError.format("no positions")
        }
        let positions = Array(positionInfo.bytes.bindMemory(to: Int32.self)).map(Int.init)
        #expect(positions.last == 202_751)
        let inverse = RotaryTable.inverseFrequencies(config: config)
        let expectedInverse = try RotaryTableTests.floats(file, "inv_freq")
        #expect(inverse.map(\.bitPattern) == expectedInverse.map(\.bitPattern), "\(name) inv_freq")
        let half = inverse.count
        let angles = try RotaryTableTests.floats(file, "angles")
        let cos = try RotaryTableTests.floats(file, "cos"), sin = try RotaryTableTests.floats(file, "sin")
        var row = [Float](repeating: 0, count: 2 * half)
        var exact = 0
        for (i, p) in positions.enumerated() {
            RotaryTable.cosSin(position: p, inverseFrequencies: inverse, into: &row)
            for j in 0..<half {
                let k = i * half + j
                #expect(RotaryTable.angle(position: p, inverseFrequency: inverse[j]).bitPattern == angles[k].bitPattern,
                        "\(name) angle p=\(p) j=\(j)")
                let c = row[2 * j], s = row[2 * j + 1]
                #expect(abs(c - cos[k]) <= RotaryTableTests.ulp(cos[k]), "\(name) cos p=\(p) j=\(j): \(c) vs \(cos[k])")
                #expect(abs(s - sin[k]) <= RotaryTableTests.ulp(sin[k]), "\(name) sin p=\(p) j=\(j): \(s) vs \(sin[k])")
                if c == cos[k] && s == sin[k] { exact += 1 }
            }
        }
        print("RoPE \(name): \(exact) of \(positions.count * half) (cos, sin) pairs bit-identical to transformers")
    }

    /// A session's table holds those rows (the table the forward pass reads).
    @Test func aSessionsTableHoldsTheRowsAtItsPositions() throws {
        let model = try Model.load(directory: try ReferenceModel("glm47").directory, threads: 1)
        let table = try RotaryTable(config: model.config, contextLength: 5000)
        let inverse = RotaryTable.inverseFrequencies(config: model.config)
        var row = [Float](repeating: 0, count: 2 * inverse.count)
        for p in [0, 1, 4095, 4999] {
            RotaryTable.cosSin(position: p, inverseFrequencies: inverse, into: &row)
            #expect(Array(UnsafeBufferPointer(start: table.pairs(at: p), count: row.count)) == row)
        }
    }
}
