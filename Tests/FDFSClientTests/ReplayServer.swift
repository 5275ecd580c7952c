import FDFSProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A loopback server that answers each request frame with scripted bytes (usually captured
/// from a real FastDFS server), records what it received, and can misbehave on purpose.
final class ReplayServer: Sendable {
    /// What to do after a request arrives.
    enum Action: Sendable {
        case send([UInt8])
        case close
        /// Do nothing (the client should time out).
        case stall
    }

    struct Request: Sendable {
        var header: FDFSHeader
        var body: [UInt8]
        /// Header and body as they arrived.
        var frame: [UInt8] {
            var buffer = header.encoded()
            buffer.writeBytes(body)
            return Array(buffer.readableBytesView)
        }
    }

    let channel: any Channel
    /// The bound port, read once (a closed channel no longer knows its address).
    let port: Int
    let received = Mutex<[Request]>([])
    let connections = Atomic<Int>(0)

    var endpoint: StorageEndpoint { StorageEndpoint(ip: "127.0.0.1", port: port) }
    var requests: [Request] { received.withLock { $0 } }

    init(script: @escaping @Sendable (Request) -> [Action]) async throws {
        let box = Box()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    box.server?.connections.wrappingAdd(1, ordering: .relaxed)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FDFSFrameDecoder(maxBufferedBody: 64 << 20)))
                    try channel.pipeline.syncOperations.addHandler(Handler(box: box, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress!.port!
        box.server = self
    }

    func stop() async {
        try? await channel.close()
    }

    /// Lets child handlers reach the server once it exists.
    final class Box: @unchecked Sendable {
        weak var server: ReplayServer?
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = FDFSFramePart
        let box: Box
        let script: @Sendable (Request) -> [Action]
        var header: FDFSHeader?
        var body: [UInt8] = []

        init(box: Box, script: @escaping @Sendable (Request) -> [Action]) {
            self.box = box
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(header):
                self.header = header
                body = []
            case let .body(buffer):
                body += buffer.readableBytesView
            case .end:
                let request = Request(header: header!, body: body)
                box.server?.received.withLock { $0.append(request) }
                for action in script(request) {
                    switch action {
                    case let .send(bytes):
                        context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
                    case .close:
                        context.close(promise: nil)
                        return
                    case .stall:
                        return
                    }
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// A response frame: header with `status` and `body`.
func responseFrame(status: UInt8 = 0, body: [UInt8] = [], announcedLength: Int64? = nil) -> [UInt8] {
    var buffer = FDFSHeader(bodyLength: announcedLength ?? Int64(body.count), command: .response, status: status).encoded()
    buffer.writeBytes(body)
    return Array(buffer.readableBytesView)
}
