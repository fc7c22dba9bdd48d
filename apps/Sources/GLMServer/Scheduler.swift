import GLMClient
import Synchronization

/// How one generation request ended.
enum JobOutcome: Sendable {
    /// libglm answered (a cancelled request still has its partial response).
    case finished(ChatResult)
    /// Stopped at the request deadline (--timeout); the partial response.
    case timedOut(ChatResult)
    /// libglm refused or failed the request.
    case failed(GLMCallError)
    /// The request never ran: its client left, or it waited in the queue past --queue-timeout.
    case dropped(DropReason)
}

enum DropReason: Sendable { case clientGone, queueTimeout }

/// One chat-completions request (chat or raw prompt) waiting for, or running on, a slot.
final class GenerationJob: @unchecked Sendable {
    let requestJSON: String
    /// The prompt's tokens as the server rendered them, for choosing the slot whose cache shares the longest prefix
    /// (empty when they could not be computed: any slot will do).
    let promptTokens: [Int32]
    let enqueued = monotonicSeconds()
    /// Generation stops at the first event after this instant (monotonic seconds).
    let deadline: Double
    /// Receives each streamed event on the slot's thread (nil: nobody streams).
    let onEvent: (@Sendable (ChatEvent) -> Void)?
    /// Receives the outcome, once, on the slot's thread.
    let onDone: @Sendable (JobOutcome) -> Void

    private let cancelFlag = Atomic<Bool>(false)
    private let timeoutFlag = Atomic<Bool>(false)

    init(requestJSON: String, promptTokens: [Int32], timeoutSeconds: Double,
         onEvent: (@Sendable (ChatEvent) -> Void)?, onDone: @escaping @Sendable (JobOutcome) -> Void) {
        self.requestJSON = requestJSON
        self.promptTokens = promptTokens
        self.deadline = monotonicSeconds() + timeoutSeconds
        self.onEvent = onEvent
        self.onDone = onDone
    }

    /// The client is gone: stop at the next event (the streaming callback returns false).
    func cancel() { cancelFlag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { cancelFlag.load(ordering: .relaxed) }
    var timedOut: Bool { timeoutFlag.load(ordering: .relaxed) }

    /// The event callback's answer: go on, unless the client left or the deadline passed.
    func shouldContinue() -> Bool {
        if isCancelled { return false }
        if monotonicSeconds() > deadline {
            timeoutFlag.store(true, ordering: .relaxed)
            return false
        }
        return true
    }
}

/// Counters for /health (and the tests: a disconnected client shows as a cancel here).
struct SchedulerCounters: Sendable {
    var submitted = 0
    var completed = 0
    var cancelled = 0
    var timedOut = 0
    var failed = 0
    var rejected = 0
    var promptTokens = 0
    var cachedTokens = 0
    var completionTokens = 0
}

/// N slots, each a glm_chat (its own KV cache) served by a thread of its own, and a bounded FIFO queue.
///
/// Which slot (README, "The server: `glm serve`"): among the idle slots, those whose cached prompt the request keeps at
/// least half of (the shared token prefix is >= half the slot's cached prompt) are matches, and the request goes
/// to the match sharing the longest prefix: a multi-turn client's next turn lands where its previous turn is
/// cached. With no match it goes to the least recently used idle slot (an unused one first), so that a request
/// sharing only the template's first tokens or a common system prompt's start does not overwrite another
/// conversation's cache when a colder slot is free (llama.cpp's --slot-prompt-similarity, measured the same way
/// against the slot's prompt). With no slot idle it waits in the queue, and a full queue refuses it at once. A
/// queued request takes the first slot that frees (first come, first served). A request never waits for a busy
/// slot: its cache is being rewritten by the request it runs, so waiting could gain only the prefix shared with
/// that request (which an idle slot evaluates once and then holds too), at the cost of serializing the slots for
/// the rest of a generation of unknown length.
final class SlotScheduler: @unchecked Sendable {
    private struct Slot {
        var job: GenerationJob?
        /// The prompt tokens of the last request this slot ran (what its cache starts with).
        var cachedPrompt: [Int32] = []
        var lastUsed: UInt64 = 0
    }

    let queueLimit: Int
    let queueTimeout: Double
    private let monitor = Monitor()
    private var slots: [Slot]
    private var queue: [GenerationJob] = []
    private var tick: UInt64 = 0
    private var counters = SchedulerCounters()

    /// Creates one thread per chat. Fails (nil) only if a thread cannot be started.
    init?(chats: [Chat], queueLimit: Int, queueTimeout: Double) {
        self.queueLimit = queueLimit
        self.queueTimeout = queueTimeout
        slots = Array(repeating: Slot(), count: chats.count)
        for (index, chat) in chats.enumerated() {
            guard startThread({ [self] in serve(slot: index, chat: chat) }) else { return nil }
        }
    }

    var slotCount: Int { slots.count }

    struct Snapshot: Sendable {
        var idle: Int
        var busy: Int
        var queued: Int
        var counters: SchedulerCounters
    }

    func snapshot() -> Snapshot {
        monitor.locked {
            let busy = slots.filter { $0.job != nil }.count
            return Snapshot(idle: slots.count - busy, busy: busy, queued: queue.count, counters: counters)
        }
    }

    /// Queues `job` (or hands it straight to an idle slot). False when the queue is full: the caller answers
    /// "busy" and the job is never run.
    func submit(_ job: GenerationJob) -> Bool {
        monitor.locked {
            if queue.isEmpty, let slot = bestIdleSlot(for: job.promptTokens) {
                assign(job, to: slot)
                counters.submitted += 1
                return true
            }
            guard queue.count < queueLimit else {
                counters.rejected += 1
                return false
            }
            queue.append(job)
            counters.submitted += 1
            return true
        }
    }

    /// The client of `job` left: a queued job leaves the queue at once (its place is free for another request),
    /// a running one stops at its next token (libglm's event callback returns false), freeing its slot.
    func cancel(_ job: GenerationJob) {
        job.cancel()
        let wasQueued: Bool = monitor.locked {
            guard let index = queue.firstIndex(where: { $0 === job }) else { return false }
            queue.remove(at: index)
            counters.cancelled += 1
            return true
        }
        if wasQueued { job.onDone(.dropped(.clientGone)) }
    }

    // MARK: - inside the lock

    private func assign(_ job: GenerationJob, to slot: Int) {
        tick += 1
        slots[slot].job = job
        slots[slot].lastUsed = tick
        monitor.broadcast()
    }

    /// The idle slot for `prompt` (see the type's comment): the match sharing the longest prefix, else the least
    /// recently used idle slot.
    private func bestIdleSlot(for prompt: [Int32]) -> Int? {
        var best: (index: Int, shared: Int)?
        var coldest: (index: Int, lastUsed: UInt64)?
        for (i, slot) in slots.enumerated() where slot.job == nil {
            if (coldest.map { slot.lastUsed < $0.lastUsed } ?? true) { coldest = (i, slot.lastUsed) }
            let shared = commonPrefixLength(slot.cachedPrompt, prompt)
            guard shared > 0, 2 * shared >= slot.cachedPrompt.count else { continue }
            if let b = best, shared <= b.shared { continue }
            best = (i, shared)
        }
        return best?.index ?? coldest?.index
    }

    /// Hands queued jobs to idle slots, oldest first; drops those whose client left or whose wait ran out.
    private func dispatchQueued() -> [(GenerationJob, DropReason)] {
        var dropped: [(GenerationJob, DropReason)] = []
        let now = monotonicSeconds()
        while !queue.isEmpty {
            let job = queue[0]
            if job.isCancelled || now - job.enqueued > queueTimeout {
                queue.removeFirst()
                dropped.append((job, job.isCancelled ? .clientGone : .queueTimeout))
                continue
            }
            guard let slot = bestIdleSlot(for: job.promptTokens) else { break }
            queue.removeFirst()
            assign(job, to: slot)
        }
        return dropped
    }

    // MARK: - slot threads

    private func serve(slot index: Int, chat: Chat) {
        while true {
            let job: GenerationJob = monitor.locked {
                while true {
                    if let job = slots[index].job { return job }
                    monitor.wait()
                }
            }
            let outcome = run(job, on: chat)
            let dropped: [(GenerationJob, DropReason)] = monitor.locked {
                slots[index].job = nil
                record(outcome, for: job)
                switch outcome {
                case .finished, .timedOut: slots[index].cachedPrompt = job.promptTokens
                case .failed, .dropped: break  // libglm left the cache as it was
                }
                return dispatchQueued()
            }
            // Outside the lock: the callbacks resume tasks and must not hold up the scheduler.
            job.onDone(outcome)
            for (job, reason) in dropped {
                monitor.locked { if reason == .queueTimeout { counters.timedOut += 1 } else { counters.cancelled += 1 } }
                job.onDone(.dropped(reason))
            }
        }
    }

    private func run(_ job: GenerationJob, on chat: Chat) -> JobOutcome {
        if job.isCancelled { return .dropped(.clientGone) }
        do {
            let result = try chat.complete(requestJSON: job.requestJSON) { event in
                guard job.shouldContinue() else { return false }
                job.onEvent?(event)
                return true
            }
            return job.timedOut && result.cancelled ? .timedOut(result) : .finished(result)
        } catch {
            return .failed(error)
        }
    }

    private func record(_ outcome: JobOutcome, for job: GenerationJob) {
        switch outcome {
        case .finished(let result), .timedOut(let result):
            if job.timedOut { counters.timedOut += 1 } else if result.cancelled { counters.cancelled += 1 } else { counters.completed += 1 }
            if let response = try? JSON.parse(result.responseJSON), let usage = response["usage"] {
                counters.promptTokens += usage["prompt_tokens"]?.intValue ?? 0
                counters.completionTokens += usage["completion_tokens"]?.intValue ?? 0
                counters.cachedTokens += usage["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0
            }
        case .failed:
            counters.failed += 1
        case .dropped(let reason):
            if reason == .queueTimeout { counters.timedOut += 1 } else { counters.cancelled += 1 }
        }
    }
}

func commonPrefixLength(_ a: [Int32], _ b: [Int32]) -> Int {
    var n = 0
    let limit = min(a.count, b.count)
    while n < limit, a[n] == b[n] { n += 1 }
    return n
}
