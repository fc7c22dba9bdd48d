import Testing
import Foundation
@testable import GLMModel
import GLMFormats
import GLMNumerics
import GLMSupport

/// A GGUF file taken apart into metadata entries (raw bytes), tensor infos and tensor bytes, so that tests can
/// rebuild it with one thing wrong: another split boundary, an offset, a type, a dimension, a metadata value.
/// Only what these tests need; the reader under test is GGUFFile, this is the test's own independent parse.
struct GGUFParts {
    struct Entry { var key: String; var type: UInt32; var value: [UInt8] }
    struct Tensor { var name: String; var dims: [UInt64]; var type: UInt32; var offset: UInt64; var data: [UInt8] }
    var entries: [Entry] = []
    var tensors: [Tensor] = []
    var alignment = 32

    init(path: String) throws {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var at = 0
        func u32() -> UInt32 { defer { at += 4 }; return (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) } }
        func u64() -> UInt64 { defer { at += 8 }; return (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
        func string() -> String { let n = Int(u64()); defer { at += n }; return String(decoding: b[at..<(at + n)], as: UTF8.self) }
        let scalar: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        func skip(_ type: UInt32) {
            if let n = scalar[type] { at += n } else if type == 8 { _ = string() } else {
                let item = u32(), count = u64()
                for _ in 0..<count { skip(item) }
            }
        }
        at = 8
        let nTensors = Int(u64()), nKV = Int(u64())
        for _ in 0..<nKV {
            let key = string(), type = u32(), start = at
            skip(type)
            entries.append(Entry(key: key, type: type, value: Array(b[start..<at])))
            if key == "general.alignment" { alignment = Int(b[start]) | Int(b[start + 1]) << 8 }
        }
        var infos: [(String, [UInt64], UInt32, UInt64)] = []
        for _ in 0..<nTensors {
            let name = string()
            let dims = (0..<Int(u32())).map { _ in u64() }
            infos.append((name, dims, u32(), u64()))
        }
        let dataStart = (at + alignment - 1) / alignment * alignment
        for (name, dims, type, offset) in infos {
            let t = try #require(GGMLType.known[type])
            let size = Int(dims.reduce(1, *)) / t.blockSize * t.bytesPerBlock
            let from = dataStart + Int(offset)
            tensors.append(Tensor(name: name, dims: dims, type: type, offset: offset, data: Array(b[from..<(from + size)])))
        }
    }

    /// Sets an integer metadata value, keeping its type's width.
    mutating func set(_ key: String, _ value: Int) throws {
        let i = try #require(entries.firstIndex { $0.key == key }, "\(key)")
        let width = entries[i].value.count
        entries[i].value = (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// Offsets as a writer lays them out: in order, each padded to the alignment.
    mutating func layOut() {
        var next: UInt64 = 0
        for i in tensors.indices {
            tensors[i].offset = next
            next += UInt64(tensors[i].data.count + alignment - 1) / UInt64(alignment) * UInt64(alignment)
        }
    }

    /// The file's bytes, with the offsets as they stand (`layOut` first for a well-formed file).
    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out += Array(s.utf8) }
        u32(GGUFFile.magic); u32(3); u64(UInt64(tensors.count)); u64(UInt64(entries.count))
        for e in entries { string(e.key); u32(e.type); out += e.value }
        for t in tensors {
            string(t.name); u32(UInt32(t.dims.count)); t.dims.forEach(u64); u32(t.type); u64(t.offset)
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for t in tensors {
            let end = dataStart + Int(t.offset) + t.data.count
            if out.count < end { out += [UInt8](repeating: 0, count: end - out.count) }
            out.replaceSubrange((dataStart + Int(t.offset))..<end, with: t.data)
        }
        return out   // ends where the last tensor's data ends (no trailing padding)
    }

    func write(_ path: String) throws { try Data(bytes()).write(to: URL(fileURLWithPath: path)) }
}

/// Hostile split sets and tensor layouts (issue 11 item 2: "counts, offsets, alignment, type sizes, shapes against
/// metadata, a missing split → clear errors, never a crash"), made from the converter's split BF16 fixture
/// (GGUFModelTests covers a missing part and a part with the wrong split.no). Each error must name what is wrong.
@Suite struct GGUFSplitHostileTests {
    static let part1 = GGUFModelTests.bf16
    static let part2 = GGUFModelTests.directory + "/glm-tiny-bf16-00002-of-00002.gguf"

    func directory(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "glm-gguf-split-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func expectError(_ path: String, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try Model.load(directory: path)
            Issue.record("\(path) loaded", sourceLocation: sourceLocation)
        } catch {
            for p in parts { #expect(error.message.contains(p), "\(error.message)", sourceLocation: sourceLocation) }
        }
    }

    /// The fixture's two parts as written by the converter, rebuilt by GGUFParts: loads, with the same logits.
    @Test func rebuiltFixtureStillLoads() throws {
        let dir = try directory("rebuilt")
        for (i, source) in [GGUFSplitHostileTests.part1, GGUFSplitHostileTests.part2].enumerated() {
            var p = try GGUFParts(path: source)
            p.layOut()
            try p.write(dir + "/m-0000\(i + 1)-of-00002.gguf")
        }
        let rebuilt = try Model.load(directory: dir + "/m-00001-of-00002.gguf")
        let original = try Model.load(directory: GGUFSplitHostileTests.part1)
        let tokens: [Int32] = [4257, 10, 200]
        let a = try Session(model: original, contextLength: 4).evaluate(tokens: tokens, logits: .all)
        let b = try Session(model: rebuilt, contextLength: 4).evaluate(tokens: tokens, logits: .all)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }

    /// split.count in a part disagrees with the number in the file names; split.tensors.count with the tensors.
    @Test func splitCountMismatch() throws {
        let dir = try directory("count")
        var p1 = try GGUFParts(path: GGUFSplitHostileTests.part1)
        try p1.set("split.count", 3)
        try p1.write(dir + "/m-00001-of-00002.gguf")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: dir + "/m-00002-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["m-00001-of-00002.gguf", "split.count is 3", "2 parts"])

        // Three names, two parts' worth of metadata (the third a copy of the second).
        let three = try directory("three")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part1, toPath: three + "/m-00001-of-00003.gguf")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: three + "/m-00002-of-00003.gguf")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: three + "/m-00003-of-00003.gguf")
        expectError(three, contains: ["split.count is 2", "3 parts"])

        var counted = try GGUFParts(path: GGUFSplitHostileTests.part1)
        let total = try GGUFFile(path: GGUFSplitHostileTests.part1).tensors.count
            + GGUFFile(path: GGUFSplitHostileTests.part2).tensors.count
        try counted.set("split.tensors.count", total + 1)
        try counted.write(dir + "/m-00001-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["split.tensors.count is \(total + 1)", "hold \(total) tensors"])
    }

    /// Parts of two split sets of the same model cut at different tensors, under one set's names: a tensor in
    /// both parts, or tensors in neither.
    @Test func partsFromTwoDifferentSets() throws {
        let a1 = try GGUFParts(path: GGUFSplitHostileTests.part1), a2 = try GGUFParts(path: GGUFSplitHostileTests.part2)
        let all = a1.tensors + a2.tensors
        let cut = a1.tensors.count / 2   // set B: the first `cut` tensors, then the rest
        var b1 = a1, b2 = a2
        b1.tensors = Array(all[..<cut])
        b2.tensors = Array(all[cut...])
        b1.layOut(); b2.layOut()

        let dir = try directory("sets")
        let (first, second) = (dir + "/m-00001-of-00002.gguf", dir + "/m-00002-of-00002.gguf")
        // A's first part, B's second: tensor all[cut] is in both. The count in part 1 gives it away first; with the
        // count made to agree, the duplicate does.
        var a1Counted = a1
        try a1Counted.set("split.tensors.count", a1.tensors.count + b2.tensors.count)
        a1Counted.layOut()
        try b2.write(second)
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part1, toPath: first)
        expectError(first, contains: ["split.tensors.count is \(all.count)", "hold \(a1.tensors.count + b2.tensors.count) tensors"])
        try FileManager.default.removeItem(atPath: first)
        try a1Counted.write(first)
        expectError(first, contains: ["appears in two files", "'\(all[cut].name)'"])

        // B's first part, A's second: the tensors between the two cuts are in neither.
        let held = b1.tensors.count + a2.tensors.count
        try b1.write(first)
        try FileManager.default.removeItem(atPath: second)
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: second)
        expectError(first, contains: ["split.tensors.count is \(all.count)", "hold \(held) tensors"])
        try b1.set("split.tensors.count", held)
        try b1.write(first)
        expectError(first, contains: ["has no tensor"])
    }

    /// A tensor whose data runs past the end of its part: the part cut short, or an offset moved out.
    @Test func tensorDataRunningPastItsSplit() throws {
        let dir = try directory("past")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part1, toPath: dir + "/m-00001-of-00002.gguf")
        var p2 = try GGUFParts(path: GGUFSplitHostileTests.part2)
        p2.layOut()
        let last = try #require(p2.tensors.last)
        try Data(p2.bytes().dropLast()).write(to: URL(fileURLWithPath: dir + "/m-00002-of-00002.gguf"))
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["m-00002-of-00002.gguf", "'\(last.name)'", "extends past the end"])

        // The first tensor's offset moved 1 MiB on, in a file of the original length (bytes() would grow it).
        let length = p2.bytes().count
        p2.tensors[0].offset += UInt64(1 << 20)
        try Data(p2.bytes().prefix(length)).write(to: URL(fileURLWithPath: dir + "/m-00002-of-00002.gguf"))
        expectError(dir, contains: ["m-00002-of-00002.gguf", "'\(p2.tensors[0].name)'", "past the end of the file"])
    }

    /// Two tensors sharing bytes; a tensor whose type makes it larger than its slot (a type size that disagrees
    /// with the layout), both found as overlaps.
    @Test func overlappingTensors() throws {
        let dir = try directory("overlap")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: dir + "/m-00002-of-00002.gguf")
        var p1 = try GGUFParts(path: GGUFSplitHostileTests.part1)
        p1.layOut()
        let original = p1
        p1.tensors[3].offset = p1.tensors[2].offset
        try p1.write(dir + "/m-00001-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["overlaps", p1.tensors[2].name, p1.tensors[3].name])

        // BF16 relabelled F32: twice the bytes, so it runs into the tensor after it.
        p1 = original
        let i = try #require(p1.tensors.indices.first { p1.tensors[$0].type == 30 && $0 + 1 < p1.tensors.count })
        p1.tensors[i].type = 0
        try p1.write(dir + "/m-00001-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["overlaps", p1.tensors[i].name])
    }

    @Test func misalignedOffset() throws {
        let dir = try directory("align")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part1, toPath: dir + "/m-00001-of-00002.gguf")
        var p2 = try GGUFParts(path: GGUFSplitHostileTests.part2)
        p2.layOut()
        p2.tensors[1].offset += 2
        try p2.write(dir + "/m-00002-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["m-00002-of-00002.gguf", p2.tensors[1].name,
                                                               "not a multiple of the alignment \(p2.alignment)"])
    }

    /// Shapes against the metadata: a matrix with the wrong number of rows for head_count × key_length, and a
    /// row length that is not whole blocks of the tensor's type.
    @Test func shapeAndTypeAgainstMetadata() throws {
        let dir = try directory("shape")
        try FileManager.default.copyItem(atPath: GGUFSplitHostileTests.part2, toPath: dir + "/m-00002-of-00002.gguf")
        var p1 = try GGUFParts(path: GGUFSplitHostileTests.part1)
        let q = try #require(p1.tensors.firstIndex { $0.name == "blk.0.attn_q.weight" })
        let (columns, rows) = (p1.tensors[q].dims[0], p1.tensors[q].dims[1])
        p1.tensors[q].dims = [columns * 2, rows / 2]   // same bytes, another shape
        p1.layOut()
        try p1.write(dir + "/m-00001-of-00002.gguf")
        expectError(dir + "/m-00001-of-00002.gguf", contains: ["model.layers.0.self_attn.q_proj.weight",
                                                               "blk.0.attn_q.weight", "expected [\(rows), \(columns)]"])

        // Q8_0 takes rows of whole 32-element blocks.
        var q8 = try GGUFParts(path: GGUFModelTests.q8)
        let k = try #require(q8.tensors.firstIndex { $0.name == "blk.0.attn_k.weight" })
        q8.tensors[k].dims[0] -= 1
        try q8.write(dir + "/q.gguf")
        expectError(dir + "/q.gguf", contains: ["blk.0.attn_k.weight", "not a multiple of the Q8_0 block size 32"])
    }
}

/// Issue 11 item 2: GGUF weights are "memory-mapped and computed on in place: no dequantized or repacked copy".
/// Checked without timing or RSS noise: every weight matrix of the loaded model points into a file-backed mapping
/// of one of the model's own .gguf files (/proc/self/maps), with all its bytes inside that mapping. A copy (heap or
/// anonymous memory) would lie elsewhere. (The peak RSS of the big synthetic files: tools/gguf_peak_rss.py.)
@Suite struct GGUFMappingTests {
    struct Region { let range: Range<UInt>; let path: String }

    static func fileMappings() throws -> [Region] {
        // Read to the end with read(2): /proc files report size 0, and Foundation's String(contentsOfFile:) then
        // returns only the first page of a long listing.
        let fd = open("/proc/self/maps", O_RDONLY)
        guard fd >= 0 else { throw GLMError.io("cannot open /proc/self/maps") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        var out: [Region] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            // start-end perms offset dev inode [path]
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else { continue }
            out.append(Region(range: start..<end, path: fields[5].trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    static func matrices(_ m: Model) -> [(String, WeightMatrix)] {
        var out: [(String, WeightMatrix)] = [("embed_tokens", m.embedTokens), ("lm_head", m.lmHead)]
        func mlp(_ name: String, _ w: MLPWeights) {
            out.append((name + ".gate", w.gate))
            out.append((name + ".up", w.up))
            out.append((name + ".down", w.down))
        }
        var layers: [(String, DecoderLayerWeights)] = []
        for (i, layer) in m.layers.enumerated() { layers.append(("layer \(i)", layer)) }
        if let mtp = m.mtp {
            layers.append(("mtp", mtp.layer))
            out.append(("mtp.embed_tokens", mtp.embedTokens))
            out.append(("mtp.eh_proj", mtp.combine))
            out.append(("mtp.head", mtp.head))
        }
        for (name, layer) in layers {
            let a = layer.attention
            out.append((name + ".q", a.query))
            out.append((name + ".k", a.key))
            out.append((name + ".v", a.value))
            out.append((name + ".o", a.output))
            switch layer.feedForward {
            case .dense(let w): mlp(name + ".mlp", w)
            case .mixtureOfExperts(let moe):
                out.append((name + ".router", moe.router))
                for (e, w) in moe.experts.enumerated() { mlp(name + ".expert \(e)", w) }
                if let shared = moe.shared { mlp(name + ".shared", shared) }
            }
        }
        return out
    }

    static func base(_ w: WeightMatrix) -> UInt {
        switch w.storage {
        case .f32(let p): return UInt(bitPattern: p)
        case .bf16(let p), .f16(let p): return UInt(bitPattern: p)
        case .ggml(_, let p, _): return UInt(bitPattern: p)
        case .fp8(let p, _): return UInt(bitPattern: p)
        }
    }

    @Test(arguments: [GGUFModelTests.bf16, GGUFModelTests.q8, GGUFModelTests.mixed,
                      GGUFModelTests.directory + "/glm-tiny-q8_0-gate_up.gguf",
                      GGUFModelTests.directory + "/air-bf16.gguf"])
    func weightsPointIntoTheMappedFiles(path: String) throws {
        let model = try Model.load(directory: path)
        let gguf = try GGUFModel(path: path)
        let files = Set(gguf.files.map { URL(fileURLWithPath: $0.path).resolvingSymlinksInPath().path })
        let regions = try GGUFMappingTests.fileMappings()
        let weights = GGUFMappingTests.matrices(model)
        #expect(weights.count >= 20)
        var seen = Set<String>()
        for (name, w) in weights {
            let start = GGUFMappingTests.base(w)
            let end = start + UInt(w.byteCount)
            let holder = regions.first { $0.range.contains(start) }
            #expect(holder.map { files.contains($0.path) } == true, "\(path): \(name) at 0x\(String(start, radix: 16)) is not in a mapping of the model's files (\(holder?.path ?? "no mapping"))")
            if let holder { #expect(end <= holder.range.upperBound, "\(name) runs past its mapping"); seen.insert(holder.path) }
        }
        // A split set: both parts provide weights.
        #expect(seen.count == files.count, "\(seen) vs \(files)")
    }
}
