import NIOCore
import NIOHTTP1

/// Closes an HTTP connection whose next request is not complete within `timeout`
/// (`network_timeout`): an idle keep-alive connection, half a request head, or a head sent a
/// byte at a time. The clock runs only while the server waits for a request; it stops when a
/// request is complete and starts again once its response has been written, so a long
/// download is never cut.
///
/// Sits between the HTTP server pipeline and ``HTTPFileHandler``; every stored property is
/// touched on the channel's event loop only.
final class HTTPRequestDeadline: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    /// Requests read completely whose response has not been written yet.
    private var inFlight = 0

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            inFlight += 1
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.whenComplete { [self] _ in
            inFlight = max(0, inFlight - 1)
            if inFlight == 0 { arm() }
        }
        context.write(data, promise: written)
    }

    private func arm() {
        disarm()
        guard let context, context.channel.isActive else { return }
        timer = context.eventLoop.scheduleTask(in: timeout) { [self] in
            timer = nil
            self.context?.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
