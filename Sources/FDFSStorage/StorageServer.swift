import FDFSClient
import FDFSMetrics
import FDFSProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A running storage server: the storage port, tracker reporting, replication, the HTTP
/// port and the `/metrics` port, wired together and stopped together.
///
/// Run it inside a `ServiceGroup` (``run()`` starts it and stops it on graceful shutdown), or
/// call ``start()`` and ``stop()`` directly.
public final class StorageServer: Service, Sendable {
    public let context: StorageContext
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let state = Mutex(RunState())
    private let connections = Mutex([ObjectIdentifier: any Channel]())

    struct RunState {
        var listener: (any Channel)?
        var metricsServer: MetricsHTTPServer?
        var background: [Task<Void, Never>] = []
        var stopped = false
    }

    public init(configuration: StorageConfiguration, logger: Logger) throws(StorageError) {
        do { try configuration.validate() } catch { throw StorageError.invalid(error.message) }
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(2, System.coreCount))
        threadPool = NIOThreadPool(numberOfThreads: 4)
        threadPool.start()
        do {
            context = try StorageContext(configuration: configuration, logger: logger, eventLoopGroup: group, threadPool: threadPool)
        } catch {
            try? group.syncShutdownGracefully()
            threadPool.shutdownGracefully { _ in }
            throw error
        }
    }

    /// The bound storage port (useful when configured as 0 in tests).
    public var port: Int? { state.withLock { $0.listener?.localAddress?.port } }

    /// The bound `/metrics` port, if `metrics_port` is set.
    public var metricsPort: Int? { state.withLock { $0.metricsServer?.port } }

    /// Starts the server, waits for graceful shutdown (SIGTERM, SIGINT), then stops it.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        context.logger.info("shutting down")
        await stop()
    }

    /// Admits a connection unless `max_connections` are open.
    private func admit(_ channel: any Channel, limit: Int) -> Bool {
        let key = ObjectIdentifier(channel)
        return connections.withLock { open -> Bool in
            guard open.count < limit else { return false }
            open[key] = channel
            return true
        }
    }

    private func release(_ channel: any Channel) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Binds the storage port and starts the background tasks.
    public func start() async throws {
        let configuration = context.configuration
        let context = self.context
        let metrics = context.metrics
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 64 << 10, maximum: 1 << 20))
            .childChannelInitializer { channel in
                let peer = channel.remoteAddress?.ipAddress ?? ""
                guard configuration.allowHosts.allows(peer) else {
                    metrics.refusedByAllowHosts.increment()
                    context.logger.warning("connection from \(peer) refused by allow_hosts")
                    return channel.close()
                }
                guard self.admit(channel, limit: configuration.maxConnections) else {
                    metrics.refusedByLimit.increment()
                    context.logger.warning("connection from \(peer) refused: max_connections (\(configuration.maxConnections)) reached")
                    return channel.close()
                }
                metrics.connectionsAccepted.increment()
                channel.closeFuture.whenComplete { _ in self.release(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    let queue = FramePartInbox(highWater: 2 << 20)
                    let decoder = FDFSFrameDecoder(maxBufferedBody: configuration.buffSize, streamedCommands: StorageServer.streamedCommands)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(queue)
                    let session = Session(context: context, channel: channel, queue: queue)
                    Task { await session.run() }
                }
            }
        let host = configuration.bindAddress ?? "0.0.0.0"
        let channel = try await bootstrap.bind(host: host, port: configuration.port).get()
        state.withLock { $0.listener = channel }
        context.logger.info("storage \(configuration.group) listening on \(host):\(channel.localAddress?.port ?? configuration.port), \(configuration.storePaths.count) store path(s)")
        if !configuration.trackers.isEmpty {
            let sync = SyncManager(context: context)
            for tracker in configuration.trackers {
                let reporter = TrackerReporter(context: context, tracker: tracker, sync: sync)
                addBackground(Task { await reporter.run() })
            }
            addBackground(Task { await sync.run() })
        }
        if configuration.metricsPort > 0 {
            let server = try await MetricsHTTPServer.start(host: host, port: configuration.metricsPort, group: group) { () -> [UInt8] in
                metrics.registry.exposition()
            }
            state.withLock { $0.metricsServer = server }
            context.logger.info("metrics on http://\(host):\(server.port ?? configuration.metricsPort)/metrics")
        }
        if configuration.httpPort > 0 {
            let http = HTTPServer(context: context)
            try await http.start()
            addBackground(Task {
                await withTaskCancellationHandler { try? await Task.sleep(for: .seconds(1 << 40)) } onCancel: { http.stop() }
            })
        }
    }

    private func addBackground(_ task: Task<Void, Never>) {
        state.withLock { $0.background.append(task) }
    }

    /// Commands whose bodies are streamed instead of buffered (file content).
    static let streamedCommands: Set<FDFSCommand> = [
        .uploadFile, .uploadAppenderFile, .uploadSlaveFile, .appendFile, .modifyFile,
        .syncCreateFile, .syncUpdateFile, .syncAppendFile, .syncModifyFile,
        // Read whole by its handler, which answers an over-long body with EINVAL.
        .setMetadata,
    ]

    /// Stops accepting, cancels background work and releases the event loops.
    public func stop() async {
        let (listener, metricsServer, tasks, already) = state.withLock { state -> ((any Channel)?, MetricsHTTPServer?, [Task<Void, Never>], Bool) in
            defer { state.stopped = true }
            return (state.listener, state.metricsServer, state.background, state.stopped)
        }
        guard !already else { return }
        try? await listener?.close()
        await metricsServer?.stop()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        for channel in connections.withLock({ Array($0.values) }) {
            try? await channel.close()
        }
        await context.closeBinlog()
        try? await group.shutdownGracefully()
        try? await threadPool.shutdownGracefully()
        context.logger.info("storage stopped")
    }
}
