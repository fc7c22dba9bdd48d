import Glibc

/// Every call the library makes into OpenBLAS goes through `OpenBLASCalls.run`, so that a `fork()` of the host
/// process happens between OpenBLAS calls, never during one.
///
/// Why: OpenBLAS 0.3.21 (pthread build) registers its own fork handler when it is loaded: before the fork it shuts
/// its worker threads down, without waiting for the job they may be running. A thread that is inside a
/// multi-threaded `cblas_sgemm` at that moment then spins forever on workers that are gone (the parent hangs), and
/// the child inherits sgemm's internal level-3 mutex locked, so its first multi-threaded sgemm blocks forever.
/// Our prepare handler takes `lock` for writing, i.e. waits until the calls in flight have returned; fork handlers
/// prepare in the reverse order of their registration, and ours is registered on our first OpenBLAS call, long
/// after OpenBLAS registered its own at load, so OpenBLAS only ever shuts down idle threads. In the child, OpenBLAS
/// starts its threads again on its next multi-threaded call (with the thread count it had).
///
/// Calls hold the lock for reading, so sessions on different threads still call OpenBLAS concurrently; the lock
/// prefers writers, so sessions that keep calling cannot starve a fork. Calls that the host makes into the same
/// libopenblas itself are outside this lock (ARCHITECTURE.md, Threads).
enum OpenBLASCalls {
    /// A pthread object must not move: it lives in its own allocation. Creating it registers the fork handlers.
    private static let lock: UnsafeMutablePointer<pthread_rwlock_t> = {
        let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        initialize(lock)
        pthread_atfork({ OpenBLASCalls.prepareFork() }, { OpenBLASCalls.afterForkInParent() },
                       { OpenBLASCalls.afterForkInChild() })
        return lock
    }()

    /// Runs `body`, which calls OpenBLAS, with no fork in between.
    static func run<Result>(_ body: () -> Result) -> Result {
        let lock = self.lock
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body()
    }

    private static func initialize(_ lock: UnsafeMutablePointer<pthread_rwlock_t>) {
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
    }

    private static func prepareFork() { pthread_rwlock_wrlock(lock) }
    private static func afterForkInParent() { pthread_rwlock_unlock(lock) }
    /// The child's only thread is the one that forked; the lock it holds is recorded under its parent-side thread
    /// id, so the child starts from a fresh lock instead of unlocking that one.
    private static func afterForkInChild() { initialize(lock) }
}
