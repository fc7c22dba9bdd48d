import Glibc

/// A read-only memory map of a whole file. Weights are computed on in place from such maps (no copy), so a
/// model larger than RAM still opens; the kernel pages it in on use.
///
/// Bytes are reached only through `bytes` (bounds known) or `slice(offset:count:)` (bounds checked), so a
/// corrupt length or offset in a file becomes an error, never an out-of-bounds read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    /// Maps `path` read-only. Throws `.io` naming the path and the system's reason; anything but a regular file
    /// (a directory, a FIFO, a device, a socket) is refused.
    public init(path: String) throws(GLMError) {
        self.path = path
        // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever (for a regular file the flag
        // changes nothing). What was opened is checked with fstat, so a file swapped after a stat cannot slip by.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw .io("cannot open '\(path)': \(MappedFile.errnoText())") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw .io("cannot stat '\(path)': \(MappedFile.errnoText())") }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .io("'\(path)' is a directory, not a file")
        case S_IFIFO: throw .io("'\(path)' is a FIFO, not a regular file")
        case S_IFCHR, S_IFBLK: throw .io("'\(path)' is a device, not a regular file")
        case S_IFSOCK: throw .io("'\(path)' is a socket, not a regular file")
        default: throw .io("'\(path)' is not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        if p == MAP_FAILED || p == nil { throw .io("cannot map '\(path)': \(MappedFile.errnoText())") }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// All bytes of the file.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// `count` bytes at `offset`, or an error naming the file if that range is not inside it.
    public func slice(offset: Int, count length: Int) throws(GLMError) -> UnsafeRawBufferPointer {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw .format("'\(path)': byte range \(offset)..<\(offset &+ length) is outside the file (\(count) bytes)")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
    }

    /// Tells the kernel the whole file will be read soon (used before a load-time scan).
    public func adviseWillNeed() {
        if let base { madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_WILLNEED) }
    }

    /// Maps the pages of `offset..<offset+length` into this process now, reading them from disk where the page
    /// cache lacks them (`MADV_POPULATE_READ`, Linux 5.14+; on older kernels one byte per page is read), so that
    /// the first computation on them does not stop on page faults. The range is clamped to the file. Throws `.io`
    /// if the kernel cannot read the file (an I/O error, a file truncated since it was mapped).
    public func populate(offset: Int, count length: Int) throws(GLMError) {
        guard let base, offset >= 0, length > 0, offset < count else { return }
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        let start = offset / page * page
        let end = min(count, offset + min(length, count - offset))
        let madvPopulateRead: Int32 = 22   // MADV_POPULATE_READ (Linux uapi; Glibc's headers may predate it)
        if madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, madvPopulateRead) == 0 { return }
        let error = errno
        guard error == EINVAL else {
            throw .io("'\(path)': reading bytes \(start)..<\(end) into memory failed: \(String(cString: strerror(error)))")
        }
        // A kernel without MADV_POPULATE_READ: touch every page (the file's size was checked when it was mapped).
        var sum: UInt8 = 0
        var at = start
        while at < end {
            sum &+= base.load(fromByteOffset: at, as: UInt8.self)
            at += page
        }
        withExtendedLifetime(sum) {}
    }

    /// Tells the kernel the bytes `offset..<offset+length` are not needed any more: their pages leave this process's
    /// resident set (they stay in the page cache, and a later read maps them again). A streaming pass over a file
    /// larger than memory (GGUF quantisation) calls it behind itself, so its RSS stays at what it is working on.
    public func adviseDontNeed(offset: Int, count length: Int) {
        guard let base, offset >= 0, length > 0, offset < count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = offset / page * page
        let end = min(count, offset + min(length, count - offset))
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Small file-system helpers shared by the loaders.
public enum FileSystem {
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Reads a whole (small) file as UTF-8 text; invalid UTF-8 is an error naming the file.
    public static func readText(_ path: String) throws(GLMError) -> String {
        let file = try MappedFile(path: path)
        guard let text = String(validating: file.bytes, as: UTF8.self) else {
            throw .format("'\(path)' is not valid UTF-8 text")
        }
        return text
    }

    /// Names of the entries of a directory (not `.`/`..`), sorted.
    public static func listDirectory(_ path: String) throws(GLMError) -> [String] {
        guard let dir = opendir(path) else { throw .io("cannot list '\(path)': \(MappedFile.errnoText())") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }
}
