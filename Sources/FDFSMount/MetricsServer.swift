import NIOCore
import NIOPosix

/// A tiny HTTP/1.1 server answering every request with the Prometheus text exposition.
public final class MetricsServer: Sendable {
    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Listens on `host:port`; `render` produces the body for each request.
    public static func start(host: String, port: Int, render: @escaping @Sendable () -> String) async throws -> MetricsServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(render: render))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return MetricsServer(channel: channel)
    }

    public var port: Int? { channel.localAddress?.port }

    public func stop() async {
        try? await channel.close()
    }

    final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let render: @Sendable () -> String

        init(render: @escaping @Sendable () -> String) {
            self.render = render
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            // Answer once the request head is complete (or at once for anything short).
            let text = String(buffer: buffer)
            guard text.contains("\r\n\r\n") || text.contains("\n\n") else { return }
            let body = text.hasPrefix("GET /metrics") || text.hasPrefix("GET / ") ? render() : ""
            let status = body.isEmpty ? "404 Not Found" : "200 OK"
            let head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
            var out = context.channel.allocator.buffer(capacity: head.utf8.count + body.utf8.count)
            out.writeString(head)
            out.writeString(body)
            let channel = context.channel
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(out), promise: promise)
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension FDFSFileSystem {
    /// The metrics text, counters plus the current gauges.
    public func renderMetrics() -> String {
        metrics.render(gauges: [
            ("fdfs_mount_cache_bytes", "Bytes held by the block cache on disk.", cache.usedBytes),
            ("fdfs_mount_cache_capacity_bytes", "The block cache cap.", cache.capacity),
            ("fdfs_mount_cache_blocks", "Blocks in the block cache.", Int64(cache.blockCount)),
            ("fdfs_mount_spool_bytes", "Bytes reserved in the write spool.", spool.usedBytes),
            ("fdfs_mount_fetch_memory_bytes", "Memory taken by block fetches in flight.", budget.used),
            ("fdfs_mount_buffers_live", "Block and reply buffers alive.", ByteStorage.live.load()),
            ("fdfs_mount_buffers_mapped", "Pooled buffers mapped fresh since start.", BufferPool.shared.mapped.load()),
        ])
    }
}
