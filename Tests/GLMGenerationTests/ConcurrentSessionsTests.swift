import GLMJSON
import GLMSupport
import Glibc
import Testing
@testable import GLMGeneration

/// Sessions share one model: N pthreads each running its own session give exactly what N sequential runs give.
@Suite struct ConcurrentSessionsTests {
    /// One thread's work: a two-request conversation (the second reuses the first's cache) with seeded sampling.
    final class Conversation: @unchecked Sendable {
        let fixture: ChatFixture
        let seed: Int
        var replies: [JSONValue] = []
        var tokens: [[Int32]] = []
        var failure: String?

        init(fixture: ChatFixture, seed: Int) {
            self.fixture = fixture
            self.seed = seed
        }

        func run() {
            do throws(GLMError) {
                let session = try fixture.session(threads: 2)
                for name in ["greeting", "second_turn"] {
                    let reply = try session.complete(request: fixture.request(name) {
                        $0["temperature"] = JSONValue.double(2.5)
                        $0["seed"] = JSONValue(seed)
                        $0["max_tokens"] = JSONValue(24)
                    })
                    replies.append(withoutIdentity(reply))
                    tokens.append(session.lastCompletionTokens)
                }
            } catch {
                failure = error.message
            }
        }
    }

    @Test func threadsRunningSessionsMatchSequentialRuns() throws {
        let f = try ChatFixture.load()
        let seeds = [11, 12, 13, 14]
        let sequential = seeds.map { Conversation(fixture: f, seed: $0) }
        for c in sequential { c.run() }

        let parallel = seeds.map { Conversation(fixture: f, seed: $0) }
        var threads: [pthread_t] = []
        for c in parallel {
            var thread = pthread_t()
            let box = Unmanaged.passRetained(c).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                Unmanaged<Conversation>.fromOpaque(raw).takeRetainedValue().run()
                return nil
            }, box)
            try #require(rc == 0)
            threads.append(thread)
        }
        for t in threads { pthread_join(t, nil) }

        for (s, p) in zip(sequential, parallel) {
            #expect(s.failure == nil && p.failure == nil, "\(s.failure ?? "") \(p.failure ?? "")")
            #expect(s.tokens == p.tokens, "seed \(s.seed)")
            #expect(s.replies == p.replies, "seed \(s.seed)")
        }
        #expect(Set(sequential.map(\.tokens)).count > 1, "different seeds should give different replies")
    }

    @Test func theSameSeedGivesTheSameReplyAtAnyThreadCount() throws {
        let f = try ChatFixture.load()
        var replies: [[Int32]] = []
        for threads in [1, 2, 3] {
            let session = try f.session(threads: threads)
            _ = try session.complete(request: f.request("weather") {
                $0["temperature"] = JSONValue.double(2.5)
                $0["seed"] = JSONValue(5)
                $0["max_tokens"] = JSONValue(30)
            })
            replies.append(session.lastCompletionTokens)
        }
        #expect(replies[0] == replies[1] && replies[1] == replies[2])
    }
}
