import FDFSMetrics
import FDFSProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The tracker daemon: listens on `bind_addr:port`, serves every connection with a
/// ``TrackerChannelHandler``, runs the heartbeat timeout check, and stops cleanly on graceful
/// shutdown (it then saves the state once more). With `metrics_port` set it also serves
/// `/metrics` (Prometheus text) on `bind_addr:metrics_port`.
///
/// Run it inside a `ServiceGroup`, or call ``run()`` directly.
public final class TrackerServer: Service, Sendable {
    public let service: TrackerService
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let boundAddress = Mutex<SocketAddress?>(nil)
    private let connections = Mutex(0)

    public init(service: TrackerService, logger: Logger, threads: Int = 2) {
        self.service = service
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
    }

    /// The address the server listens on, once ``run()`` has bound it.
    public var localAddress: SocketAddress? { boundAddress.withLock { $0 } }

    /// Counts an accepted connection unless `max_connections` are open.
    private func admit(limit: Int) -> Bool {
        connections.withLock { count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    private func release() {
        connections.withLock { $0 -= 1 }
    }

    public func run() async throws {
        let settings = service.settings
        let allow = settings.allowHosts
        let service = self.service
        let logger = self.logger
        let metrics = service.metrics
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? ""
                guard allow.allows(peer) else {
                    metrics.refusedByAllowHosts.increment()
                    logger.warning("refused connection from \(peer): not in allow_hosts")
                    return channel.close()
                }
                guard self.admit(limit: settings.maxConnections) else {
                    metrics.refusedByLimit.increment()
                    logger.warning("refused connection from \(peer): max_connections (\(settings.maxConnections)) reached")
                    return channel.close()
                }
                metrics.connectionsAccepted.increment()
                metrics.connectionsOpen.increment()
                channel.closeFuture.whenComplete { _ in
                    self.release()
                    metrics.connectionsOpen.decrement()
                }
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
        boundAddress.withLock { $0 = channel.localAddress }
        logger.info("fdfs-trackerd listening on \(channel.localAddress.map(Self.describe) ?? "?")")
        var metricsServer: MetricsHTTPServer?
        if settings.metricsPort > 0 {
            do {
                metricsServer = try await MetricsHTTPServer.start(host: host, port: settings.metricsPort, group: group) { () -> [UInt8] in
                    service.updateMetrics()
                    return metrics.registry.exposition()
                }
                logger.info("metrics on http://\(host):\(metricsServer?.port ?? settings.metricsPort)/metrics")
            } catch {
                channel.close(promise: nil)
                try? await group.shutdownGracefully()
                throw error
            }
        }

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
        await metricsServer?.stop()
        await service.saveNow()
        try await group.shutdownGracefully()
        logger.info("stopped")
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
