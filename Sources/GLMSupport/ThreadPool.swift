import CGLMCPU
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
/// Why workers spin before they sleep: a decode step is ~30 parallel regions, and waking a thread blocked on a
/// condition variable takes ~20 µs (futex wake + scheduler), which on a small model is longer than the region
/// itself (measured: a 2-thread decode of the 1.8 M-parameter demo model 6.5× slower than 1 thread). A worker that
/// finished a job therefore polls its mailbox for `spinMicroseconds` (PAUSE between polls) and only then sleeps on
/// the condition variable; the caller waits for the workers the same way. Each worker has its own mailbox (a ticket
/// the caller writes after filling in the job), so a worker never reads the job fields of a job it was not invited
/// to, and the caller does not touch them again until every invited worker has reported back: no data race.
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

    /// Environment variable that sets `spinMicroseconds` for new pools (`0`: sleep at once, as before spinning).
    public static let spinEnvironmentVariable = "GLM_THREAD_SPIN_US"
    /// Default spin: a few region gaps of a decode step, far below one token of any real model.
    public static let defaultSpinMicroseconds = 200

    // pthread objects must not move: they live in their own allocations, not in Swift stored properties.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var workers: [pthread_t] = []
    private var mailboxes: [Mailbox] = []   // one per worker; only the job's caller (busy holder) changes the array
    private var generation = 0              // bumped per job: the ticket invited workers find in their mailbox
    private let remaining = Atomic<Int>(0)  // invited workers that have not finished the current job
    private var job: JobReference?
    private let next = Atomic<Int>(0)
    private var count = 0
    private var chunk = 1
    private let shuttingDown = Atomic<Bool>(false)
    private let busy = Atomic<Bool>(false)
    private let spin: Atomic<Int>

    /// How long a worker polls for its next job, and the caller for the workers' completion, before blocking
    /// (microseconds, 0 = block at once). Takes effect at the next wait.
    public var spinMicroseconds: Int {
        get { spin.load(ordering: .relaxed) }
        set { spin.store(max(0, newValue), ordering: .relaxed) }
    }

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        var microseconds = ThreadPool.defaultSpinMicroseconds
        if let raw = getenv(ThreadPool.spinEnvironmentVariable), let value = Int(String(cString: raw)), value >= 0 {
            microseconds = min(value, 1_000_000)
        }
        spin = Atomic(microseconds)
        ThreadPool.registerForFork(self)
    }

    deinit {
        pthread_mutex_lock(mutex)
        shuttingDown.store(true, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for t in workers { pthread_join(t, nil) }
        mutex.deallocate(); wake.deallocate(); done.deallocate()
    }

    /// Runs `job.run(i)` for every `i` in `0..<count` using up to `threads` threads (the caller is one of them).
    /// Indices are handed out dynamically in chunks of `grain`; `job.run` must be safe to call concurrently.
    /// Allocates nothing once the pool has its workers.
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
            if workers.count < wanted - 1 {
                pthread_mutex_lock(mutex)
                ensureWorkers(wanted - 1)
                pthread_mutex_unlock(mutex)
            }
            let invited = min(wanted - 1, workers.count)
            if invited == 0 {
                for i in 0..<count { job.run(i) }
                return
            }
            // The job's fields first, then the tickets (release): an invited worker reads the fields only after
            // it has seen its ticket (acquire).
            self.job = job
            self.count = count
            self.chunk = max(1, grain)
            self.next.store(0, ordering: .relaxed)
            self.remaining.store(invited, ordering: .relaxed)
            generation &+= 1
            for w in 0..<invited { mailboxes[w].ticket.store(generation, ordering: .releasing) }
            // Workers that gave up spinning sleep on `wake`; they check their ticket under the mutex, so taking it
            // here (after the stores) means none of them can miss this broadcast.
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)

            runChunks(job)

            if !spinUntil({ remaining.load(ordering: .acquiring) == 0 }) {
                pthread_mutex_lock(mutex)
                while remaining.load(ordering: .acquiring) > 0 { pthread_cond_wait(done, mutex) }
                pthread_mutex_unlock(mutex)
            }
            self.job = nil
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

    /// Polls `ready` for up to `spinMicroseconds`, with a PAUSE between polls; true once it held.
    private func spinUntil(_ ready: () -> Bool) -> Bool {
        let budget = spin.load(ordering: .relaxed)
        if budget == 0 { return ready() }
        let deadline = ThreadPool.monotonicNanoseconds() + UInt64(budget) * 1000
        while true {
            for _ in 0..<64 {
                if ready() { return true }
                glm_cpu_relax()
            }
            if ThreadPool.monotonicNanoseconds() >= deadline { return ready() }
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    // Called with the mutex held, by the job's caller (the busy holder): the only thread that changes `workers`
    // and `mailboxes`.
    private func ensureWorkers(_ n: Int) {
        while workers.count < n {
            let mailbox = Mailbox(ticket: generation)   // a new worker waits for a ticket newer than this
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setstacksize(&attr, 1 << 20)
            let box = Unmanaged.passRetained(WorkerStart(pool: self, mailbox: mailbox, seen: generation))
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attr, { raw in
                guard let raw else { return nil }
                let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
                start.pool.workerLoop(start.mailbox, seen: start.seen)
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attr)
            if rc != 0 {
                box.release()
                break   // fewer workers than asked: the caller and existing workers still finish the job
            }
            workers.append(thread)
            mailboxes.append(mailbox)
        }
    }

    /// Waits for a ticket newer than the last one seen, runs the job's chunks, reports back. Spins first, then
    /// sleeps on `wake`. `seen` starts at the generation current when the worker was created, not at what its
    /// mailbox holds when the thread starts: the job it was created for may already be posted there.
    private func workerLoop(_ mailbox: Mailbox, seen start: Int) {
        var seen = start
        while true {
            let invited = spinUntil {
                mailbox.ticket.load(ordering: .acquiring) != seen || shuttingDown.load(ordering: .relaxed)
            }
            if !invited {
                pthread_mutex_lock(mutex)
                while mailbox.ticket.load(ordering: .acquiring) == seen && !shuttingDown.load(ordering: .acquiring) {
                    pthread_cond_wait(wake, mutex)
                }
                pthread_mutex_unlock(mutex)
            }
            if shuttingDown.load(ordering: .acquiring) { return }
            seen = mailbox.ticket.load(ordering: .acquiring)
            if let job { runChunks(job) }
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                // The caller may be asleep on `done`; it re-checks `remaining` under the mutex, so signalling
                // under it cannot be lost.
                pthread_mutex_lock(mutex)
                pthread_cond_signal(done)
                pthread_mutex_unlock(mutex)
            }
        }
    }

    /// A worker's ticket, in its own cache lines so that polling it does not slow the other workers.
    private final class Mailbox {
        private var padBefore: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
        let ticket: Atomic<Int>
        private var padAfter: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
        init(ticket: Int) { self.ticket = Atomic(ticket) }
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
        let mailbox: Mailbox
        let seen: Int
        init(pool: ThreadPool, mailbox: Mailbox, seen: Int) { self.pool = pool; self.mailbox = mailbox; self.seen = seen }
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
        mailboxes = []
        remaining.store(0, ordering: .relaxed)
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
