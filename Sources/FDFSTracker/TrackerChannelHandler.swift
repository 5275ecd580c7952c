import FDFSProtocol
import Logging
import NIOCore

/// One tracker connection: collects a frame from ``FDFSFrameDecoder``, hands it to the
/// ``TrackerService`` and writes the reply. A framing error (negative or oversized pkg_len,
/// a frame cut by the peer) closes this connection only.
///
/// A client must send each complete request within `requestTimeout` of the tracker starting
/// to wait for it (at connect, and after each reply is written), or the connection is closed:
/// idle, half-header and trickling sockets cannot hold `max_connections` slots. A joined
/// storage's connection is exempt (its liveness is the heartbeat check's business).
///
/// Every stored property is touched on the channel's event loop only.
final class TrackerChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = FDFSFramePart
    typealias OutboundOut = ByteBuffer

    private let service: TrackerService
    private let logger: Logger
    private let requestTimeout: TimeAmount
    private var connection: TrackerConnection?
    private var header: FDFSHeader?
    private var body = ByteBuffer()
    private var context: ChannelHandlerContext?
    private var deadline: Scheduled<Void>?

    init(service: TrackerService, logger: Logger, requestTimeout: TimeAmount) {
        self.service = service
        self.logger = logger
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let peer = context.channel.remoteAddress
        let local = context.channel.localAddress
        connection = TrackerConnection(peerIP: peer?.ipAddress ?? "", localIP: local?.ipAddress ?? "", localPort: local?.port ?? 0)
        startDeadline()
        context.fireChannelActive()
    }

    /// Starts the clock for the next request (not for a joined storage).
    private func startDeadline() {
        cancelDeadline()
        guard connection?.session == nil, let context, context.channel.isActive else { return }
        deadline = context.eventLoop.scheduleTask(in: requestTimeout) { [self] in
            deadline = nil
            let peer = connection?.peerIP ?? "?"
            logger.debug("closing connection from \(peer): no complete request within \(requestTimeout.nanoseconds / 1_000_000_000) s")
            self.context?.close(promise: nil)
        }
    }

    private func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            header = head
            body.clear()
        case var .body(chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head = header, var connection else { return }
            header = nil
            cancelDeadline()
            let reply = service.handle(head, body: body, connection: &connection)
            self.connection = connection
            body.clear()
            guard let frame = reply.frame else {
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(frame)).whenSuccess { [self] in startDeadline() }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        if let connection { service.connectionClosed(connection) }
        connection = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let peer = connection?.peerIP ?? "?"
        if let error = error as? FDFSProtocolError {
            logger.warning("closing connection from \(peer): \(error)")
        } else {
            logger.debug("connection from \(peer) failed: \(error)")
        }
        context.close(promise: nil)
    }
}
