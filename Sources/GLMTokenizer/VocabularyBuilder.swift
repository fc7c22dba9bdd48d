import GLMSupport

/// Collects vocabulary strings (as stored in a file: byte-level alphabet or literal text) with their ids and
/// merges, then builds the id-ordered `TokenTable` and `MergeTable` that `BPEModel` runs on.
struct VocabularyBuilder {
    /// Largest id accepted from a file (a sanity bound so a corrupt id cannot force a huge allocation).
    static let maxID = 1 << 24

    let source: String
    private var strings: [UInt8] = []
    private var entries: [(id: Int32, start: Int32, count: Int32, inModel: Bool)] = []
    private var mergeStrings: [UInt8] = []
    private var mergeEntries: [(start: Int32, leftCount: Int32, rightCount: Int32)] = []

    init(source: String) { self.source = source }

    /// A vocabulary entry; `inModel` entries are findable by bytes (BPE vocabulary), others (added tokens
    /// outside the model vocabulary) only decode.
    mutating func add<Bytes: Collection<UInt8>>(id: Int, string: Bytes, inModel: Bool) throws(GLMError) {
        guard id >= 0 && id < VocabularyBuilder.maxID else {
            throw .format("'\(source)': token id \(id) is out of range (0..<\(VocabularyBuilder.maxID))")
        }
        guard strings.count + string.count < Int(Int32.max) else { throw .format("'\(source)': vocabulary too large") }
        entries.append((Int32(id), Int32(strings.count), Int32(string.count), inModel))
        strings.append(contentsOf: string)
    }

    mutating func addMerge<Bytes: Collection<UInt8>>(left: Bytes, right: Bytes) throws(GLMError) {
        guard mergeStrings.count + left.count + right.count < Int(Int32.max) else { throw .format("'\(source)': merges too large") }
        mergeEntries.append((Int32(mergeStrings.count), Int32(left.count), Int32(right.count)))
        mergeStrings.append(contentsOf: left)
        mergeStrings.append(contentsOf: right)
    }

    var mergeCount: Int { mergeEntries.count }

    /// Builds the tables. Ids never given become empty, unfindable entries. Two vocabulary strings with one id
    /// are an error naming both (one of them would otherwise vanish, and the first merge using it would be
    /// reported instead); an entry outside the model vocabulary given twice keeps its last string.
    func build() throws(GLMError) -> (TokenTable, MergeTable) {
        var maxID = -1
        for e in entries { maxID = max(maxID, Int(e.id)) }
        guard maxID >= 0 else { throw .format("'\(source)': the vocabulary is empty") }
        var slot = [Int32](repeating: -1, count: maxID + 1)
        for (i, e) in entries.enumerated() {
            let previous = slot[Int(e.id)]
            if previous >= 0, e.inModel, entries[Int(previous)].inModel {
                throw .format("'\(source)': token id \(e.id) is given twice in the vocabulary, to"
                    + " '\(text(of: entries[Int(previous)]))' and '\(text(of: e))'")
            }
            slot[Int(e.id)] = Int32(i)
        }
        let inverseTable = ByteLevel.byteForScalar
        return try inverseTable.withUnsafeBufferPointer { (inverse) throws(GLMError) in
            try build(slot: slot, maxID: maxID, inverse: inverse)
        }
    }

    /// An entry's string as stored in the file (for messages).
    private func text(of entry: (id: Int32, start: Int32, count: Int32, inModel: Bool)) -> String {
        String(decoding: strings[Int(entry.start)..<Int(entry.start + entry.count)], as: UTF8.self)
    }

    private func build(slot: [Int32], maxID: Int, inverse: UnsafeBufferPointer<Int16>) throws(GLMError) -> (TokenTable, MergeTable) {
        var table = TokenTable(capacity: maxID + 1)
        var failure: GLMError? = nil
        var bytes: [UInt8] = []
        strings.withUnsafeBytes { all in
            for id in 0...maxID {
                guard slot[id] >= 0 else {
                    table.append(UnsafeRawBufferPointer(start: nil, count: 0), indexed: false)
                    continue
                }
                let e = entries[Int(slot[id])]
                let raw = UnsafeRawBufferPointer(rebasing: all[Int(e.start)..<Int(e.start + e.count)])
                if ByteLevel.decode(raw, into: &bytes, table: inverse) {
                    let dup = bytes.withUnsafeBytes { table.append($0, indexed: e.inModel) }
                    if let dup, e.inModel {
                        failure = .format("'\(source)': tokens \(dup) and \(id) have the same text '\(String(decoding: raw, as: UTF8.self))'")
                        return
                    }
                } else {
                    // Not in the byte alphabet: literal text (HF's ByteLevel decoder falls back to the UTF-8).
                    table.append(raw, indexed: false)
                }
            }
        }
        if let failure { throw failure }

        var merges = MergeTable(capacity: mergeEntries.count)
        var aBytes: [UInt8] = [], bBytes: [UInt8] = []
        mergeStrings.withUnsafeBytes { all in
            for (rank, m) in mergeEntries.enumerated() {
                let left = UnsafeRawBufferPointer(rebasing: all[Int(m.start)..<Int(m.start + m.leftCount)])
                let right = UnsafeRawBufferPointer(rebasing: all[Int(m.start + m.leftCount)..<Int(m.start + m.leftCount + m.rightCount)])
                func describe() -> String {
                    "'\(source)': merge #\(rank) '\(String(decoding: left, as: UTF8.self)) \(String(decoding: right, as: UTF8.self))'"
                }
                guard ByteLevel.decode(left, into: &aBytes, table: inverse), let a = aBytes.withUnsafeBytes({ table.find($0) }) else {
                    failure = .format("\(describe()): '\(String(decoding: left, as: UTF8.self))' is not in the vocabulary")
                    return
                }
                guard ByteLevel.decode(right, into: &bBytes, table: inverse), let b = bBytes.withUnsafeBytes({ table.find($0) }) else {
                    failure = .format("\(describe()): '\(String(decoding: right, as: UTF8.self))' is not in the vocabulary")
                    return
                }
                aBytes.append(contentsOf: bBytes)
                guard let merged = aBytes.withUnsafeBytes({ table.find($0) }) else {
                    failure = .format("\(describe()) produces a token that is not in the vocabulary")
                    return
                }
                merges.set(left: a, right: b, rank: Int32(rank), merged: merged)
            }
        }
        if let failure { throw failure }
        return (table, merges)
    }
}

extension BPEModel {
    /// The starting symbols for each byte: its single-byte token; else `<0xXX>` tokens for the UTF-8 of its
    /// alphabet character (byte fallback); else the unknown token; else nothing (HF drops such characters).
    static func initialSymbols(tokens: TokenTable, byteFallback: Bool, unknown: Int32?,
                               byteFallbackID: (UInt8) -> Int32?) -> [[Int32]] {
        (0..<256).map { b -> [Int32] in
            if let id = [UInt8(b)].withUnsafeBytes({ tokens.find($0) }) { return [id] }
            if byteFallback {
                let utf8 = Array(String(Unicode.Scalar(ByteLevel.scalarForByte[b]) ?? "?").utf8)
                let ids = utf8.compactMap(byteFallbackID)
                if ids.count == utf8.count { return ids }
            }
            if let unknown { return [unknown] }
            return []
        }
    }
}
