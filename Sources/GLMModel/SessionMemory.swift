import Glibc
import GLMFormats
import GLMNumerics
import GLMSupport

/// How much memory a new session may take: the least of what the system can still give (MemAvailable + SwapFree
/// from /proc/meminfo), what the process's cgroup allows beyond its current use (v2 memory.max − memory.current,
/// or v1 memory.limit_in_bytes − memory.usage_in_bytes) and a caller's cap.
///
/// MemAvailable, not MemTotal: it is the kernel's own estimate of what new allocations can get without swapping
/// (free memory plus reclaimable page cache, which includes the mmapped weights' clean pages). Because session
/// buffers that matter (the KV caches) are written when allocated, a session that exists is resident and the
/// next session's check sees it; untouched allocations would let N sessions each pass against the same free
/// memory and be killed later, mid-conversation, when their caches fill.
public struct MemoryLimit: Sendable, Equatable {
    public let bytes: Int
    /// Where the figure comes from, for error messages.
    public let source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// The current limit, with `cap` (> 0) as the caller's own bound. nil: nothing is known and no cap was set.
    public static func current(cap: Int = 0) -> MemoryLimit? {
        var limits: [MemoryLimit] = []
        if cap > 0 { limits.append(MemoryLimit(bytes: cap, source: "the caller's memory limit")) }
        if let text = readSmallFile("/proc/meminfo"), let limit = fromMeminfo(text) { limits.append(limit) }
        if let limit = cgroupLimit() { limits.append(limit) }
        return limits.min { $0.bytes < $1.bytes }
    }

    /// MemAvailable + SwapFree (kB in the file).
    public static func fromMeminfo(_ text: String) -> MemoryLimit? {
        var available: Int?, swapFree = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let value = Int(parts[1]) else { continue }
            if parts[0] == "MemAvailable:" { available = value }
            if parts[0] == "SwapFree:" { swapFree = value }
        }
        guard let available else { return nil }
        return MemoryLimit(bytes: (available + swapFree) * 1024,
                           source: "MemAvailable \(format(available * 1024)) + SwapFree \(format(swapFree * 1024))"
                               + " (/proc/meminfo)")
    }

    /// A cgroup's room: `limit` ("max" or bytes) minus `usage` (bytes). nil when unlimited or unreadable.
    public static func fromCgroup(limit: String, usage: String, name: String) -> MemoryLimit? {
        let l = limit.trimmingWhitespace, u = usage.trimmingWhitespace
        // v1 writes "unlimited" as a page-rounded Int64.max.
        guard l != "max", let max = Int(l), max < (1 << 60), let used = Int(u) else { return nil }
        return MemoryLimit(bytes: Swift.max(0, max - used),
                           source: "cgroup \(name): limit \(format(max)) − usage \(format(used))")
    }

    private static func cgroupLimit() -> MemoryLimit? {
        guard let groups = readSmallFile("/proc/self/cgroup") else { return nil }
        for line in groups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {          // v2
                let dir = "/sys/fs/cgroup" + (path == "/" ? "" : path)
                if let max = readSmallFile(dir + "/memory.max"), let cur = readSmallFile(dir + "/memory.current") {
                    return fromCgroup(limit: max, usage: cur, name: "memory.max")
                }
            } else if fields[1].split(separator: ",").contains("memory") {   // v1
                let dir = "/sys/fs/cgroup/memory" + (path == "/" ? "" : path)
                if let max = readSmallFile(dir + "/memory.limit_in_bytes"),
                   let cur = readSmallFile(dir + "/memory.usage_in_bytes") {
                    return fromCgroup(limit: max, usage: cur, name: "memory.limit_in_bytes")
                }
            }
        }
        return nil
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// "1.50 GiB" style.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(bytes) B" }
        let scaled = Int((value * 100).rounded())
        let fraction = scaled % 100
        return "\(scaled / 100).\(fraction < 10 ? "0" : "")\(fraction) \(units[unit])"
    }
}

private extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
