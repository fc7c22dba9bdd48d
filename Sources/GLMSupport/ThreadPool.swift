import Glibc
import Synchronization

/// Work that `ThreadPool.parallelFor(_:threads:grain:job:)` runs for every index of a range, concurrently.
///
/// Why a protocol and not a closure: handing a closure to the pool's threads means letting it escape, and Swift
/// then heap-allocates its context (`withoutActuallyEscaping`) on every call. A job is a value the caller owns;
/// the pool reaches it through a pointer while `parallelFor` runs, so the hot paths allocate nothing.
public protocol ParallelJob {
    func run(_ index: Int)
}

/// A small pthread pool: `parallelFor` splits an index range over the workers and the calling thread.
///
/// Why not Swift concurrency or Dispatch: a Task hangs in a `fork()`ed child once the parent used libdispatch,
/// and Python's multiprocessing forks. This pool registers `pthread_atfork` handlers: the child inherits no
/// workers, so it forgets them and starts fresh ones on its next `parallelFor`.
///
/// One job runs at a time. A `parallelFor` issued while another is running (another session's thread, or a
/// nested call from inside a job) runs serially on its own thread rather than waiting, so it can never deadlock.
public final class ThreadPool: @unchecked Sendable {
    /// The process-wide pool, grown on demand to the largest thread count any caller asked for.
    public static let shared = ThreadPool()

    /// Threads used when a caller does not say (the number of online CPUs).
    public static var defaultThreadCount: Int {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? Int(n) : 1
    }

    // pthread objects must not move: they live in their own allocations, not in Swift stored properties.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var workers: [pthread_t] = []
    private var generation = 0          // bumped per job; workers wait for a new one
    private var active = 0              // workers still running the current job
    private var participants = 0        // workers asked to join the current job
    private var job: JobReference?
    private let next = Atomic<Int>(0)
    private var count = 0
    private var chunk = 1
    private var shuttingDown = false
    private let busy = Atomic<Bool>(false)

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        ThreadPool.registerForFork(self)
    }

    deinit {
        pthread_mutex_lock(mutex)
        shuttingDown = true
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for t in workers { pthread_join(t, nil) }
        mutex.deallocate(); wake.deallocate(); done.deallocate()
    }

    /// Runs `job.run(i)` for every `i` in `0..<count` using up to `threads` threads (the caller is one of them).
    /// Indices are handed out dynamically in chunks of `grain`; `job.run` must be safe to call concurrently.
    /// Allocates nothing.
    public func parallelFor<Job: ParallelJob>(_ count: Int, threads: Int, grain: Int = 1, job: Job) {
        if count <= 0 { return }
        let wanted = max(1, min(threads, count))
        if wanted == 1 || busy.exchange(true, ordering: .acquiring) {
            for i in 0..<count { job.run(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withUnsafePointer(to: job) { job in
            let job = JobReference(job)
            pthread_mutex_lock(mutex)
            ensureWorkers(wanted - 1)
            self.job = job
            self.count = count
            self.chunk = max(1, grain)
            self.next.store(0, ordering: .relaxed)
            self.participants = wanted - 1
            self.active = wanted - 1
            self.generation &+= 1
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)

            runChunks(job)

            pthread_mutex_lock(mutex)
            while active > 0 { pthread_cond_wait(done, mutex) }
            self.job = nil
            pthread_mutex_unlock(mutex)
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, as `parallelFor(_:threads:grain:job:)`. Allocates the closure's
    /// context on every call: for tests and tools, not for the forward pass.
    public func parallelFor(_ count: Int, threads: Int, grain: Int = 1, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            parallelFor(count, threads: threads, grain: grain, job: ClosureJob(body: body))
        }
    }

    /// Convenience: `threads` defaults to the machine's CPU count.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        parallelFor(count, threads: ThreadPool.defaultThreadCount, body)
    }

    private func runChunks(_ job: JobReference) {
        while true {
            let start = next.add(chunk, ordering: .relaxed).oldValue
            if start >= count { return }
            for i in start..<min(start + chunk, count) { job.run(i) }
        }
    }

    // Called with the mutex held.
    private func ensureWorkers(_ n: Int) {
        while workers.count < n {
            let index = workers.count
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setstacksize(&attr, 1 << 20)
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index, generation: generation))
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attr, { raw in
                guard let raw else { return nil }
                let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
                start.pool.workerLoop(index: start.index, seen: start.generation)
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attr)
            if rc != 0 {
                box.release()
                break   // fewer workers than asked: the caller and existing workers still finish the job
            }
            workers.append(thread)
        }
    }

    /// `seen` is the generation current when the worker was created: a worker created for a job must not
    /// skip it.
    private func workerLoop(index: Int, seen start: Int) {
        var seen = start
        pthread_mutex_lock(mutex)
        while true {
            while generation == seen && !shuttingDown { pthread_cond_wait(wake, mutex) }
            if shuttingDown { pthread_mutex_unlock(mutex); return }
            seen = generation
            guard index < participants, let job else { continue }
            pthread_mutex_unlock(mutex)
            runChunks(job)
            pthread_mutex_lock(mutex)
            active -= 1
            if active == 0 { pthread_cond_signal(done) }
        }
    }

    /// The running job, reached through the address of the caller's value: valid while its `parallelFor` runs.
    private struct JobReference {
        let address: UnsafeRawPointer
        let type: any ParallelJob.Type

        init<Job: ParallelJob>(_ job: UnsafePointer<Job>) {
            address = UnsafeRawPointer(job)
            type = Job.self
        }

        func run(_ index: Int) { type.run(at: address, index) }
    }

    private struct ClosureJob: ParallelJob {
        let body: (Int) -> Void
        func run(_ index: Int) { body(index) }
    }

    // MARK: fork safety

    private final class WorkerStart {
        let pool: ThreadPool
        let index: Int
        let generation: Int
        init(pool: ThreadPool, index: Int, generation: Int) {
            self.pool = pool; self.index = index; self.generation = generation
        }
    }

    private static func registerForFork(_ pool: ThreadPool) {
        forkRegistry.add(pool)
    }

    /// In the child only the forking thread exists: the workers are gone, and the mutex may have been held
    /// by one of them. Rebuild the synchronisation objects and forget the workers.
    fileprivate func resetAfterFork() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        workers = []
        active = 0
        participants = 0
        job = nil
        busy.store(false, ordering: .relaxed)
    }

    fileprivate func lockForFork() { pthread_mutex_lock(mutex) }
    fileprivate func unlockForFork() { pthread_mutex_unlock(mutex) }
}

extension ParallelJob {
    /// Runs the job of type `Self` stored at `address` (`ThreadPool` keeps jobs of any type behind one pointer).
    fileprivate static func run(at address: UnsafeRawPointer, _ index: Int) {
        address.assumingMemoryBound(to: Self.self).pointee.run(index)
    }
}

private final class ForkRegistry: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var pools: [Weak] = []
    private struct Weak { weak var pool: ThreadPool? }

    init() {
        pthread_mutex_init(lock, nil)
        pthread_atfork(
            { forkRegistryPrepare() },
            { forkRegistryParent() },
            { forkRegistryChild() })
    }

    func add(_ pool: ThreadPool) {
        pthread_mutex_lock(lock)
        pools.removeAll { $0.pool == nil }
        pools.append(Weak(pool: pool))
        pthread_mutex_unlock(lock)
    }

    func prepare() {
        pthread_mutex_lock(lock)
        for p in pools { p.pool?.lockForFork() }
    }

    func parent() {
        for p in pools { p.pool?.unlockForFork() }
        pthread_mutex_unlock(lock)
    }

    func child() {
        pthread_mutex_init(lock, nil)
        for p in pools { p.pool?.resetAfterFork() }
    }

    static let instance = ForkRegistry()
}

// pthread_atfork takes C function pointers: no captures, so they reach the registry through a global.
private let forkRegistry = ForkRegistry.instance
private func forkRegistryPrepare() { forkRegistry.prepare() }
private func forkRegistryParent() { forkRegistry.parent() }
private func forkRegistryChild() { forkRegistry.child() }
