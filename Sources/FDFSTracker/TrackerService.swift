import FDFSProtocol
import Foundation
import Logging
import NIOCore
import Synchronization

/// Per-connection facts the dispatcher needs.
public struct TrackerConnection: Sendable {
    /// The peer's IP text (the storage id of a storage that joins on this connection).
    public var peerIP: String
    /// This tracker's IP and port on the connection (the leader brief names them).
    public var localIP: String
    public var localPort: Int
    /// Set by a successful JOIN.
    public var session: TrackerRegistry.Session?

    public init(peerIP: String, localIP: String, localPort: Int) {
        self.peerIP = peerIP
        self.localIP = localIP
        self.localPort = localPort
    }
}

/// What to do with a request.
public enum TrackerReply: Sendable, Equatable {
    /// Send a response with this status and body.
    case respond(FDFSStatus, ByteBuffer)
    /// Close the connection without a response (QUIT).
    case close

    /// The whole response frame (header + body), or nil for ``close``.
    public var frame: ByteBuffer? {
        guard case let .respond(status, body) = self else { return nil }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(FDFSHeader.size + body.readableBytes)
        FDFSHeader(bodyLength: Int64(body.readableBytes), command: .response, status: status.rawValue).encode(into: &buffer)
        var copy = body
        buffer.writeBuffer(&copy)
        return buffer
    }
}

/// The tracker's request dispatcher: decodes a request body, runs it against the registry
/// (under one lock), hands a snapshot to the state writer when it changed (the disk write happens
/// on the writer's queue, outside the lock), and encodes the reply. Errors become status
/// bytes here and nowhere else (``TrackerError/status``).
public final class TrackerService: Sendable {
    private let state: Mutex<TrackerRegistry>
    private let store: RegistryStore?
    private let writer: RegistryWriter?
    /// Connections, heartbeats, state saves, storages per status.
    public let metrics: TrackerMetrics
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    public let settings: TrackerSettings

    /// `store` nil keeps everything in memory (unit tests). `clock` returns unix seconds.
    public init(settings: TrackerSettings, store: RegistryStore?, logger: Logger, clock: @escaping @Sendable () -> Int64 = TrackerService.unixNow) {
        self.settings = settings
        self.store = store
        self.logger = logger
        self.clock = clock
        let metrics = TrackerMetrics()
        self.metrics = metrics
        writer = store.map { RegistryWriter(store: $0, logger: logger, metrics: metrics) }
        state = Mutex(TrackerRegistry(settings: settings))
    }

    /// Unix time in seconds.
    @Sendable public static func unixNow() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// Creates the data directory and loads the saved state, if any.
    public func loadState() throws(TrackerStoreError) {
        guard let store else { return }
        try store.prepare()
        var loaded = TrackerRegistry(settings: settings)
        try store.load(into: &loaded)
        let groups = loaded.groups.count
        let storages = loaded.groups.values.reduce(0) { $0 + $1.storages.count }
        state.withLock { $0 = loaded }
        logger.info("loaded state from \(store.path): \(groups) group(s), \(storages) storage(s)")
    }

    /// A copy of the registry (for tests and diagnostics).
    public var registry: TrackerRegistry { state.withLock { $0 } }

    // MARK: - Requests

    /// Handles one complete request frame.
    public func handle(_ header: FDFSHeader, body: ByteBuffer, connection: inout TrackerConnection) -> TrackerReply {
        if header.command == .quit { return .close }
        let now = clock()
        var session = connection.session
        let result: Result<ByteBuffer, TrackerError> = state.withLock { registry in
            let outcome: Result<ByteBuffer, TrackerError>
            do throws(TrackerError) {
                outcome = .success(try perform(header.command, body: body, connection: connection, session: &session, registry: &registry, now: now))
            } catch {
                outcome = .failure(error)
            }
            persistIfNeeded(&registry)
            return outcome
        }
        connection.session = session
        metrics.requests.increment()
        switch result {
        case let .success(reply):
            if header.command == .storageBeat { metrics.heartbeats.increment() }
            if reply.readableBytes > settings.maxBufferSize - FDFSHeader.size {
                logger.warning("\(header.command) from \(connection.peerIP): reply of \(reply.readableBytes) bytes exceeds max_buff_size")
                return .respond(TrackerError(.tooLarge, "").status, ByteBuffer())
            }
            return .respond(.ok, reply)
        case let .failure(error):
            let level: Logger.Level = error.code == .invalid || error.code == .notJoined ? .warning : .debug
            logger.log(level: level, "\(header.command) from \(connection.peerIP): \(error)")
            return .respond(error.status, ByteBuffer())
        }
    }

    /// The connection closed: a joined storage goes OFFLINE at once.
    public func connectionClosed(_ connection: TrackerConnection) {
        guard let session = connection.session else { return }
        let changed = state.withLock { registry -> Bool in
            let changed = registry.disconnected(session)
            persistIfNeeded(&registry)
            return changed
        }
        if changed { logger.info("storage \(session.group)/\(session.storageID) disconnected, now OFFLINE") }
    }

    /// Heartbeat timeout check (run periodically).
    public func checkAlive() {
        let now = clock()
        let changed = state.withLock { registry -> [String] in
            let changed = registry.checkAlive(now: now)
            persistIfNeeded(&registry)
            return changed
        }
        for name in changed {
            logger.warning("storage \(name) sent no beat for more than \(settings.checkActiveInterval) s, now OFFLINE")
        }
    }

    /// Saves unconditionally and waits until the state is on disk (at shutdown), without
    /// blocking a thread of the cooperative pool.
    public func saveNow() async {
        state.withLock { registry in
            registry.needsSave = true
            persistIfNeeded(&registry)
        }
        await writer?.flushed()
    }

    /// Waits until every state change made so far is on disk.
    public func waitForSaves() {
        writer?.flush()
    }

    /// Sets the per-status gauges from the registry (called at each scrape; memory only).
    public func updateMetrics() {
        let snapshot = registry
        metrics.update(from: snapshot)
    }

    /// Runs under the registry lock: takes a snapshot (copy on write) for the writer, which
    /// saves it on its own queue. Snapshots reach the writer in lock order.
    private func persistIfNeeded(_ registry: inout TrackerRegistry) {
        guard registry.needsSave else { return }
        registry.needsSave = false
        registry.needsLazySave = false
        writer?.submit(registry)
    }

    // MARK: - Dispatch

    private func perform(
        _ command: FDFSCommand, body: ByteBuffer, connection: TrackerConnection,
        session: inout TrackerRegistry.Session?, registry: inout TrackerRegistry, now: Int64
    ) throws(TrackerError) -> ByteBuffer {
        func decode<T>(_ decoder: (ByteBuffer) throws(FDFSProtocolError) -> T) throws(TrackerError) -> T {
            do { return try decoder(body) } catch { throw TrackerError(error) }
        }
        func expectEmpty() throws(TrackerError) {
            guard body.readableBytes == 0 else { throw TrackerError(.invalid, "\(command) takes no body, got \(body.readableBytes) bytes") }
        }
        func joined() throws(TrackerError) -> TrackerRegistry.Session {
            guard let session else { throw TrackerError(.notJoined, "\(command) before JOIN") }
            return session
        }
        let profile = settings.profile
        let leader = StorageBrief(status: 0, port: Int32(clamping: connection.localPort), id: connection.localIP, ip: connection.localIP)

        switch command {
        case .activeTest:
            try expectEmpty()
            return ByteBuffer()

        // Storage → tracker
        case .storageJoin:
            let request = try decode(StorageJoinRequest.decode)
            let (response, newSession) = try registry.join(request, peerIP: connection.peerIP, now: now)
            if let old = session, old.storageID != newSession.storageID || old.group != newSession.group {
                registry.disconnected(old)
            }
            session = newSession
            logger.info("storage \(newSession.group)/\(newSession.storageID):\(request.storagePort) joined (version \(request.version)), status \(StorageStatus(rawValue: response.status)?.name ?? "?")")
            return response.encoded()
        case .storageBeat:
            var current = try joined()
            let request = try decode(StorageBeatRequest.decode)
            defer { session = current }
            return try registry.beat(request, session: &current, leader: leader, now: now).encoded()
        case .storageReportDiskUsage:
            var current = try joined()
            let report = try decode(StorageDiskUsageReport.decode)
            defer { session = current }
            return try registry.reportDiskUsage(report, session: &current, leader: leader, now: now).encoded()
        case .storageSyncReport:
            var current = try joined()
            let report = try decode(StorageSyncReport.decode)
            defer { session = current }
            return try registry.syncReport(report, session: &current, leader: leader, now: now).encoded()
        case .storageSyncDestRequest:
            let current = try joined()
            try expectEmpty()
            let source = try registry.syncDestRequest(session: current, now: now)
            if let source { logger.info("storage \(current.group)/\(current.storageID) syncs from \(source.sourceID) until \(source.untilTimestamp)") }
            return StorageSyncSource.encodeOptional(source)
        case .storageSyncNotify:
            let current = try joined()
            try registry.syncNotify(try decode(StorageSyncSource.decode), session: current)
            return ByteBuffer()
        case .storageSyncDestQuery:
            let current = try joined()
            try expectEmpty()
            return StorageSyncSource.encodeOptional(try registry.syncDestQuery(session: current))
        case .storageSyncSourceRequest:
            return StorageSyncSource.encodeOptional(try registry.syncSourceRequest(try decode(StorageSyncSourceRequest.decode)))
        case .storageReportStatus:
            let request = try decode(StorageReportStatusRequest.decode)
            let before = registry.groups[request.group]?.storages[request.storage.id]?.status
            try registry.reportStatus(request)
            let after = registry.groups[request.group]?.storages[request.storage.id]?.status
            if let after, after != before {
                logger.info("storage \(request.group)/\(request.storage.id) is now \(after.name) (reported by \(connection.peerIP))")
            }
            return ByteBuffer()
        case .storageChangeStatus:
            let current = try joined()
            try registry.changeStatus(try decode(StorageChangeStatusRequest.decode), session: current)
            return ByteBuffer()
        case .storageReplicaChange:
            let current = try joined()
            try registry.replicaChange(try decode(StorageReplicaChangeRequest.decode), session: current)
            return ByteBuffer()
        case .storageParameterRequest:
            try expectEmpty()
            return settings.parameters.encoded()
        case .storageChangelogRequest:
            let request = try decode(StorageChangelogRequest.decode)
            if session != nil {
                guard request.group == nil else { throw TrackerError(.invalid, "CHANGELOG_REQ on a joined connection takes no body") }
            } else {
                guard let group = request.group, let id = request.storageID else {
                    throw TrackerError(.invalid, "CHANGELOG_REQ before JOIN needs group and storage id")
                }
                guard registry.groups[group]?.storages[id] != nil else { throw TrackerError(.notFound, "CHANGELOG_REQ: no storage \(id) in \(group)") }
            }
            return ByteBuffer()
        case .storageGetMyIP:
            _ = try decode(StorageGetMyIPRequest.decode)
            return ByteBuffer(string: connection.peerIP)
        case .storageGetServerID:
            return ByteBuffer(string: registry.storageID(try decode(StorageAddressRequest.decode)))
        case .storageGetStatus:
            return try registry.storageBrief(try decode(StorageAddressRequest.decode)).encoded()
        case .storageFetchStorageIDs:
            guard body.readableBytes == 5 else { throw TrackerError(.invalid, "FETCH_STORAGE_IDS body must be 5 bytes") }
            guard body.getInteger(at: body.readerIndex + 4, as: UInt8.self) != 0 else {
                throw TrackerError(.notSupported, "storage ids are off (use_storage_id = false)")
            }
            var reply = ByteBuffer()
            reply.writeRepeatingByte(0, count: 8)
            return reply
        case .storageGetGroupName:
            throw TrackerError(.notSupported, "GET_GROUP_NAME needs storage ids, which are off")

        // Client-facing
        case .queryStoreWithoutGroupOne:
            try expectEmpty()
            return try registry.queryStore(group: nil).encoded(profile: profile)
        case .queryStoreWithGroupOne:
            return try registry.queryStore(group: try decode(GroupNameRequest.decode).group).encoded(profile: profile)
        case .queryStoreWithoutGroupAll:
            try expectEmpty()
            return try registry.queryStoreAll(group: nil).encoded(profile: profile)
        case .queryStoreWithGroupAll:
            return try registry.queryStoreAll(group: try decode(GroupNameRequest.decode).group).encoded(profile: profile)
        case .queryFetchOne, .queryUpdate, .queryFetchAll:
            guard body.readableBytes >= 16 + 22, body.readableBytes < 16 + 128 else {
                throw TrackerError(.invalid, "\(command) body of \(body.readableBytes) bytes is outside 38...143")
            }
            let request = try decode(FileRequest.decode)
            let query: TrackerRegistry.FileQuery = command == .queryFetchOne ? .fetchOne : command == .queryUpdate ? .update : .fetchAll
            return try registry.queryFile(request, query, now: now).encoded(profile: profile)
        case .listOneGroup:
            var reply = ByteBuffer()
            try registry.groupStat(try decode(GroupNameRequest.decode).group).encode(into: &reply, classic: settings.classicListing)
            return reply
        case .listAllGroups:
            try expectEmpty()
            var reply = ByteBuffer()
            for stat in registry.groupStats() { stat.encode(into: &reply, classic: settings.classicListing) }
            return reply
        case .listStorage:
            let request = try decode(ListStorageRequest.decode)
            var reply = ByteBuffer()
            for stat in try registry.storageStats(group: request.group, id: request.storageID) { stat.encode(into: &reply, profile: profile) }
            return reply
        case .deleteStorage:
            let request = try decode(DeleteStorageRequest.decode)
            try registry.deleteStorage(group: request.group, id: request.storageID)
            logger.info("storage \(request.group)/\(request.storageID) deleted by \(connection.peerIP)")
            return ByteBuffer()
        case .deleteGroup:
            let request = try decode(DeleteGroupRequest.decode)
            try registry.deleteGroup(request.group)
            logger.info("group \(request.group) deleted by \(connection.peerIP)")
            return ByteBuffer()
        case .setTrunkServer:
            throw TrackerError(.notSupported, "trunk files are not supported")
        case FDFSCommand(rawValue: 95):  // SERVER_GET_LEADER: this tracker is its own leader.
            try expectEmpty()
            let host = connection.localIP.contains(":") ? "[\(connection.localIP)]" : connection.localIP
            return ByteBuffer(string: "\(host):\(connection.localPort)")
        case let other where other.rawValue == 58 || (61...68).contains(other.rawValue):
            throw TrackerError(.notSupported, "tracker-to-tracker command \(command.rawValue) (leader election, system files): every fdfs-trackerd is its own leader")
        default:
            throw TrackerError(.invalid, "unknown command \(command.rawValue)")
        }
    }
}
