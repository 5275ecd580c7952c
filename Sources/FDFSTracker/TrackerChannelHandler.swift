import FDFSProtocol
import Logging
import NIOCore

/// One tracker connection: collects a frame from ``FDFSFrameDecoder``, hands it to the
/// ``TrackerService`` and writes the reply. A framing error (negative or oversized pkg_len,
/// a frame cut by the peer) closes this connection only.
final class TrackerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = FDFSFramePart
    typealias OutboundOut = ByteBuffer

    private let service: TrackerService
    private let logger: Logger
    private var connection: TrackerConnection?
    private var header: FDFSHeader?
    private var body = ByteBuffer()

    init(service: TrackerService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        let peer = context.channel.remoteAddress
        let local = context.channel.localAddress
        connection = TrackerConnection(peerIP: peer?.ipAddress ?? "", localIP: local?.ipAddress ?? "", localPort: local?.port ?? 0)
        context.fireChannelActive()
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
            let reply = service.handle(head, body: body, connection: &connection)
            self.connection = connection
            body.clear()
            guard let frame = reply.frame else {
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
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
