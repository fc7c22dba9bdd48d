import Glibc
import Testing
import Synchronization
@testable import GLMSupport

@Suite struct ThreadPoolTests {
    @Test func everyIndexRunsExactlyOnce() {
        let pool = ThreadPool()
        for threads in [1, 2, 4, 7] {
            let n = 10_007
            let hits = UnsafeMutablePointer<Int32>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            defer { hits.deallocate() }
            pool.parallelFor(n, threads: threads, grain: 13) { i in hits[i] += 1 }
            #expect((0..<n).allSatisfy { hits[$0] == 1 }, "threads=\(threads)")
        }
    }

    @Test func manyJobsInARow() {
        let pool = ThreadPool()
        let total = Atomic<Int>(0)
        for _ in 0..<500 {
            pool.parallelFor(64, threads: 3) { i in total.add(i, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 500 * (63 * 64 / 2))
    }

    @Test func nestedCallRunsInlineInsteadOfDeadlocking() {
        let pool = ThreadPool()
        let total = Atomic<Int>(0)
        pool.parallelFor(8, threads: 2) { _ in
            pool.parallelFor(10, threads: 2) { _ in total.add(1, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 80)
    }

    /// Workers that sleep at once (spin 0), that spin past the gaps between jobs, and that give up spinning during
    /// a pause: every job still runs each index once, while the pool grows (new workers are created for a job
    /// that is already posted) and thread counts change from job to job (uninvited workers must stay out).
    @Test(arguments: [0, 5, 2_000]) func waitModes(spin: Int) {
        let pool = ThreadPool()
        pool.spinMicroseconds = spin
        #expect(pool.spinMicroseconds == spin)
        let n = 257
        let hits = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { hits.deallocate() }
        for round in 0..<300 {
            let threads = [2, 1, 3, 2, 5, 4, 2][round % 7]
            hits.initialize(repeating: 0, count: n)
            pool.parallelFor(n, threads: threads, grain: 3) { i in hits[i] &+= 1 }
            #expect((0..<n).allSatisfy { hits[$0] == 1 }, "round \(round), threads \(threads)")
            if round % 50 == 49 { usleep(3_000) }   // longer than a 2 ms spin: the workers go to sleep
        }
    }

    /// GLM_THREAD_SPIN_US sets a new pool's spin; a value that is not a non-negative integer leaves the default.
    /// (Another test creating a pool meanwhile may get the value too: harmless, every spin is correct.)
    @Test func spinFromTheEnvironment() {
        setenv(ThreadPool.spinEnvironmentVariable, "17", 1)
        #expect(ThreadPool().spinMicroseconds == 17)
        setenv(ThreadPool.spinEnvironmentVariable, "-5", 1)
        #expect(ThreadPool().spinMicroseconds == ThreadPool.defaultSpinMicroseconds)
        setenv(ThreadPool.spinEnvironmentVariable, "fast", 1)
        #expect(ThreadPool().spinMicroseconds == ThreadPool.defaultSpinMicroseconds)
        unsetenv(ThreadPool.spinEnvironmentVariable)
    }

    @Test func negativeSpinIsZero() {
        let pool = ThreadPool()
        pool.spinMicroseconds = -4
        #expect(pool.spinMicroseconds == 0)
    }

    @Test func zeroAndNegativeCountsDoNothing() {
        var ran = false
        ThreadPool.shared.parallelFor(0, threads: 4) { _ in ran = true }
        ThreadPool.shared.parallelFor(-3, threads: 4) { _ in ran = true }
        #expect(!ran)
    }
}
