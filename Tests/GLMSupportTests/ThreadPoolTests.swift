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

    @Test func zeroAndNegativeCountsDoNothing() {
        var ran = false
        ThreadPool.shared.parallelFor(0, threads: 4) { _ in ran = true }
        ThreadPool.shared.parallelFor(-3, threads: 4) { _ in ran = true }
        #expect(!ran)
    }
}
