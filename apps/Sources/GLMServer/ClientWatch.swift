import Hummingbird
import NIOCore

// Why this exists: Hummingbird runs a route to its end even when the client has gone. A streamed reply notices on
// its next write, but a non-streamed one writes nothing until generation ends, and a request still waiting in the
// queue writes nothing at all: without a look at the connection, a client that gave up would hold its slot (or
// its queue place) for the whole generation. SwiftNIO does see the connection end while the route runs (the
// server keeps reading; the kernel reports the peer's FIN or RST): one small handler per connection passes that to
// the request in flight.

/// The request context of `glm serve`: Hummingbird's basic one plus the connection's channel.
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// One per connection, after the HTTP codec: remembers whether the client closed its side of the connection (EOF
/// or reset) and cancels the generation registered for the request in flight when it does. HTTP/1 serves one
/// request at a time per connection, so there is at most one.
///
/// A client that half-closes (shutdown(SHUT_WR)) and still waits for its reply is taken for gone as well: no HTTP
/// client does that, and uvicorn (vLLM's server) treats the same EOF as a disconnect.
final class ClientWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Never

    private var gone = false
    private var job: GenerationJob?
    private var onGone: (@Sendable (GenerationJob) -> Void)?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    private func clientLeft() {
        gone = true
        if let job, let onGone {
            self.job = nil
            self.onGone = nil
            onGone(job)
        }
    }

    /// On the channel's event loop: `onGone(job)` runs once when (or, if it already has, as soon as) the client
    /// leaves, unless `unwatch` comes first.
    func watch(_ job: GenerationJob, onGone: @escaping @Sendable (GenerationJob) -> Void) {
        if gone {
            onGone(job)
            return
        }
        self.job = job
        self.onGone = onGone
    }

    func unwatch(_ job: GenerationJob) {
        if self.job === job {
            self.job = nil
            onGone = nil
        }
    }
}

extension Channel {
    /// Registers `job` with the connection's ClientWatch (no-op on a channel without one).
    func watchClient(for job: GenerationJob, onGone: @escaping @Sendable (GenerationJob) -> Void) {
        let pipeline = self.pipeline
        eventLoop.execute {
            (try? pipeline.syncOperations.handler(type: ClientWatch.self))?.watch(job, onGone: onGone)
        }
    }

    func unwatchClient(for job: GenerationJob) {
        let pipeline = self.pipeline
        eventLoop.execute {
            (try? pipeline.syncOperations.handler(type: ClientWatch.self))?.unwatch(job)
        }
    }
}
