import Synchronization

/// Admits one call at a time to an object that C callers hold by handle (a chat, a session, a stream parser),
/// and lets a release that arrives while a call runs (from the call's own callback, or from another thread)
/// wait until that call returns.
///
/// A second call is refused, not queued: the running call may be waiting inside a callback for the very thread
/// that makes the second call, so a lock would deadlock where a refusal reports the misuse. The cost is one
/// atomic compare-and-exchange when a call starts and one atomic subtraction when it ends.
public final class CallGate: Sendable {
    private static let busy = 1
    private static let releaseRequested = 2

    /// `busy` while a call runs, plus `releaseRequested` once the owner asked to release the object.
    private let state = Atomic<Int>(0)

    public init() {}

    /// Starts a call: false if another call is running or the object was released.
    public func enter() -> Bool {
        state.compareExchange(expected: 0, desired: CallGate.busy, ordering: .acquiring).exchanged
    }

    /// Ends the call `enter` admitted. True if a release was requested while it ran: the caller must now
    /// release the object (the request left that to the running call).
    public func leave() -> Bool {
        let (old, _) = state.wrappingSubtract(CallGate.busy, ordering: .releasing)
        return old & CallGate.releaseRequested != 0
    }

    /// Requests the release of the object. True if no call is running: the caller releases it now. False if a
    /// call is running (its `leave` returns true, and it releases) or a release was already requested.
    public func requestRelease() -> Bool {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & CallGate.releaseRequested != 0 { return false }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current | CallGate.releaseRequested, ordering: .acquiringAndReleasing)
            if exchanged { return current & CallGate.busy == 0 }
            current = original
        }
    }

    /// True once a release was requested (a running chat request then stops at its next event: the caller gave
    /// the chat up).
    public var isReleaseRequested: Bool {
        state.load(ordering: .acquiring) & CallGate.releaseRequested != 0
    }
}
