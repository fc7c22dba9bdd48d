import GLMSupport
import Synchronization

/// Runs a job of many small tasks on up to `threadCount` threads of a `ThreadPool`, telling each task which
/// worker slot (0 ..< threadCount) runs it, so tasks can use per-slot scratch memory without locks.
///
/// Who computes what: every parallel loop of the forward pass goes through this one pool, and every kernel a
/// task calls is single-threaded (CGLMKernels), so the thread count a caller asked for is the number of busy
/// cores. The one exception, the `.openBLAS` GEMM backend, runs OpenBLAS's threads between jobs of this pool,
/// never during one (`OpenBLASProjector`).
///
/// Tasks are handed out dynamically (an atomic counter), so uneven tasks (experts with many or few rows) balance.
/// If the underlying pool is busy (another session computing at the same time) the job runs on the calling
/// thread alone: slot 0 takes every task.
public final class Workers: @unchecked Sendable {
    public let threadCount: Int
    private let pool: ThreadPool
    private let nextTask = Atomic<Int>(0)

    public init(threads: Int, pool: ThreadPool = .shared) {
        threadCount = max(1, threads)
        self.pool = pool
    }

    /// Below this many elements a job runs on the calling thread: waking the pool costs more than it saves.
    public static let serialElements = 1 << 15

    /// Calls `job.run(slot:task:)` once for every task in `0 ..< tasks`. A slot runs one task at a time.
    /// `elementsPerTask` (the floats a task touches) lets small jobs skip the pool. Allocates nothing.
    public func run<Job: WorkerJob>(tasks: Int, elementsPerTask: Int = Int.max, job: Job) {
        if tasks <= 0 { return }
        let small = elementsPerTask < Workers.serialElements / tasks
        let slots = small ? 1 : min(threadCount, tasks)
        if slots == 1 {
            for task in 0..<tasks { job.run(slot: 0, task: task) }
            return
        }
        nextTask.store(0, ordering: .relaxed)
        pool.parallelFor(slots, threads: slots, job: SlotLoop(workers: self, job: job, tasks: tasks))
    }

    /// Calls `body(slot, task)` as `run(tasks:elementsPerTask:job:)` does `job.run`. Allocates the closure's
    /// context on every call: for tests and tools, not for the forward pass.
    public func run(tasks: Int, elementsPerTask: Int = Int.max, _ body: (_ slot: Int, _ task: Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            run(tasks: tasks, elementsPerTask: elementsPerTask, job: ClosureJob(body: body))
        }
    }

    /// What each pool thread does: take the next task until none is left.
    private struct SlotLoop<Job: WorkerJob>: ParallelJob {
        let workers: Workers
        let job: Job
        let tasks: Int

        func run(_ slot: Int) {
            while true {
                let task = workers.nextTask.add(1, ordering: .relaxed).oldValue
                if task >= tasks { return }
                job.run(slot: slot, task: task)
            }
        }
    }

    private struct ClosureJob: WorkerJob {
        let body: (_ slot: Int, _ task: Int) -> Void
        func run(slot: Int, task: Int) { body(slot, task) }
    }
}

/// The tasks of a `Workers.run`: `run(slot:task:)` is called once per task, concurrently for different slots.
/// A job is a small value built at its call site (the pointers and sizes it works on), so dispatching it
/// allocates nothing (`ParallelJob` says why closures would).
public protocol WorkerJob {
    func run(slot: Int, task: Int)
}
