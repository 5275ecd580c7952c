import FDFSProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The tracker daemon: listens on `bind_addr:port`, serves every connection with a
/// ``TrackerChannelHandler``, runs the heartbeat timeout check, and stops cleanly on graceful
/// shutdown (it then saves the state once more).
///
/// Run it inside a `ServiceGroup`, or call ``run()`` directly.
public final class TrackerServer: Service, Sendable {
    public let service: TrackerService
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let boundAddress: NIOLockedValueBoxAddress

    public init(service: TrackerService, logger: Logger, threads: Int = 2) {
        self.service = service
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        boundAddress = NIOLockedValueBoxAddress()
    }

    /// The address the server listens on, once ``run()`` has bound it.
    public var localAddress: SocketAddress? { boundAddress.value }

    public func run() async throws {
        let settings = service.settings
        let allow = settings.allowHosts
        let service = self.service
        let logger = self.logger
        let connections = NIOLockedValueBox(0)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? ""
                guard allow.allows(peer) else {
                    logger.warning("refused connection from \(peer): not in allow_hosts")
                    return channel.close()
                }
                let admitted = connections.withLockedValue { count -> Bool in
                    guard count < settings.maxConnections else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    logger.warning("refused connection from \(peer): max_connections (\(settings.maxConnections)) reached")
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in connections.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FDFSFrameDecoder(maxBufferedBody: settings.maxBufferSize)))
                    try channel.pipeline.syncOperations.addHandler(TrackerChannelHandler(service: service, logger: logger, requestTimeout: .seconds(Int64(settings.networkTimeout))))
                }
            }
        let host = settings.bindAddress.isEmpty ? "0.0.0.0" : settings.bindAddress
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: settings.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        boundAddress.value = channel.localAddress
        logger.info("fdfs-trackerd listening on \(channel.localAddress.map(Self.describe) ?? "?")")

        let period = TimeAmount.seconds(max(1, min(settings.checkActiveInterval / 4, 10)))
        let timer = group.next().scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            service.checkAlive()
        }
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            logger.info("shutting down")
            channel.close(promise: nil)
        }
        timer.cancel()
        service.saveNow()
        try await group.shutdownGracefully()
        logger.info("stopped")
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// A lock-protected optional address (the bound address is set from the server task and read
/// from others).
final class NIOLockedValueBoxAddress: Sendable {
    private let box = NIOLockedValueBox<SocketAddress?>(nil)
    var value: SocketAddress? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}
