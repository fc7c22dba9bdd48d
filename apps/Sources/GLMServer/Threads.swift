import Glibc

// libglm's calls block for as long as they compute (a chat request: prefill and every decoded token). They run
// on threads of our own, never on SwiftNIO's event loops or Swift concurrency's cooperative pool (two threads on a
// two-core machine: one long request there would stall every connection); results come back to the async
// handlers through continuations and AsyncStreams, both safe to resume or feed from any thread.

/// A mutex and a condition variable (pthread): the scheduler's lock and its threads' wait.
final class Monitor: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Waits for a broadcast; call with the lock held (inside `locked`).
    func wait() { pthread_cond_wait(&condition, &mutex) }

    /// Waits at most `seconds`; call with the lock held.
    func wait(seconds: Double) {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let whole = Int(seconds)
        deadline.tv_sec += whole
        deadline.tv_nsec += Int((seconds - Double(whole)) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        pthread_cond_timedwait(&condition, &mutex, &deadline)
    }

    func broadcast() { pthread_cond_broadcast(&condition) }
}

/// Seconds on the monotonic clock (deadlines and waits; never the wall clock, which can jump).
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a detached pthread running `body`. libglm's chat sessions get generous stacks: its template engine and
/// JSON parser recurse (bounded), and the default 8 MiB is what the library's own tests run on.
func startThread(stackBytes: Int = 16 << 20, _ body: @escaping () -> Void) -> Bool {
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackBytes)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, &attributes, { raw in
        guard let raw else { return nil }
        let body = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
        body.run()
        return nil
    }, context)
    if status != 0 {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return false
    }
    return true
}

/// A few threads for libglm's short calls (render, tokenize, detokenize), so that they never run on the
/// cooperative pool either. Jobs run in order of submission.
final class BlockingPool: @unchecked Sendable {
    private let monitor = Monitor()
    private var jobs: [() -> Void] = []
    private var head = 0

    init(threads: Int) {
        for _ in 0..<max(1, threads) {
            _ = startThread { [self] in loop() }
        }
    }

    private func loop() {
        while true {
            let job: () -> Void = monitor.locked {
                while head == jobs.count { monitor.wait() }
                let job = jobs[head]
                head += 1
                if head == jobs.count {  // drained: reuse the storage
                    jobs.removeAll(keepingCapacity: true)
                    head = 0
                }
                return job
            }
            job()
        }
    }

    private func submit(_ job: @escaping () -> Void) {
        monitor.locked {
            jobs.append(job)
            monitor.broadcast()
        }
    }

    /// Runs `body` on one of the pool's threads and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
        }
    }
}
