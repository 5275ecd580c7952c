import FDFSProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The built-in HTTP download server on `http.server_port` (what fastdfs-nginx-module does,
/// reference §7): GET and HEAD of `/<group>/Mxx/HH/HH/name` or `/Mxx/HH/HH/name`.
final class HTTPServer: Sendable {
    let context: StorageContext
    private let channel = Mutex<(any Channel)?>(nil)

    init(context: StorageContext) { self.context = context }

    func start() async throws {
        let context = self.context
        let configuration = context.configuration
        let bootstrap = ServerBootstrap(group: context.eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? ""
                guard configuration.allowHosts.allows(peer) else { return channel.close() }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestDeadline(timeout: .seconds(Int64(configuration.networkTimeout))))
                    try channel.pipeline.syncOperations.addHandler(HTTPFileHandler(context: context))
                }
            }
        let host = configuration.bindAddress ?? "0.0.0.0"
        let bound = try await bootstrap.bind(host: host, port: configuration.httpPort).get()
        channel.withLock { $0 = bound }
        context.logger.info("HTTP downloads on \(host):\(bound.localAddress?.port ?? configuration.httpPort)")
    }

    func stop() {
        channel.withLock { $0?.close(promise: nil) }
    }
}
