import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The `/metrics` endpoint of fdfs-trackerd, fdfs-storaged and fdfs-mount: HTTP/1.1 through
/// NIOHTTP1 (so a request head split over any number of TCP segments is fine), `GET /metrics`
/// (or `GET /`) answers 200 with the Prometheus text exposition, anything else 404 or 405.
public final class MetricsHTTPServer: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Listens on `host:port` (port 0 picks a free one). `render` produces the body of each
    /// answer; it runs on an event loop, so it must only read memory (no disk, no waiting).
    public static func start(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        render: @escaping @Sendable () -> [UInt8]
    ) async throws -> MetricsHTTPServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(render: render))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return MetricsHTTPServer(channel: channel)
    }

    /// Same, with a `String` body.
    public static func start(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        render: @escaping @Sendable () -> String
    ) async throws -> MetricsHTTPServer {
        try await start(host: host, port: port, group: group, render: { Array(render().utf8) } as @Sendable () -> [UInt8])
    }

    /// The bound port.
    public var port: Int? { channel.localAddress?.port }

    /// Stops listening (connections in flight finish their answer).
    public func stop() async {
        try? await channel.close()
    }
}

/// Answers each request once its head and body are in.
final class MetricsRequestHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]

    init(render: @escaping @Sendable () -> [UInt8]) {
        self.render = render
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case let .head(head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        var body = context.channel.allocator.buffer(capacity: 0)
        var length = 0
        if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
        } else if path == "/metrics" || path == "/" {
            status = .ok
            let bytes = render()
            length = bytes.count
            if head.method == .GET { body.writeBytes(bytes) }
        } else {
            status = .notFound
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
        headers.add(name: "Content-Length", value: String(length))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
