import Synchronization

/// The process-wide default thread count used when a caller passes 0 (initially the CPU count).
public enum Threads {
    private static let storage = Atomic<Int>(0)

    public static var defaultCount: Int {
        get {
            let n = storage.load(ordering: .relaxed)
            return n > 0 ? n : ThreadPool.defaultThreadCount
        }
        set { storage.store(max(1, newValue), ordering: .relaxed) }
    }

    /// `requested` if positive, else the default.
    public static func resolve(_ requested: Int) -> Int { requested > 0 ? requested : defaultCount }
}
