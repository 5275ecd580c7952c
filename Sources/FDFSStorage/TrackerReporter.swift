import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore

/// The long-lived connection to one tracker (reference §5.1): JOIN, the initial-sync
/// negotiation (SYNC_DEST_REQ / SYNC_NOTIFY), then BEAT, SYNC_REPORT and DISK_USAGE on their
/// intervals; the group member lists in the replies drive the sync tasks. Any failure closes
/// the connection and starts over after a pause.
final class TrackerReporter: Sendable {
    let context: StorageContext
    let tracker: ServerAddress
    let sync: SyncManager

    init(context: StorageContext, tracker: ServerAddress, sync: SyncManager) {
        self.context = context
        self.tracker = tracker
        self.sync = sync
    }

    var configuration: StorageConfiguration { context.configuration }

    func run() async {
        var connectedOnce = false
        while !Task.isCancelled {
            var joined = false
            do {
                try await session { joined = true }
            } catch is CancellationError {
                return
            } catch {
                if joined || !connectedOnce {
                    context.logger.warning("tracker \(tracker): \(error)")
                } else {
                    context.logger.debug("tracker \(tracker): \(error)")
                }
            }
            connectedOnce = connectedOnce || joined
            let pause = joined ? 1 : configuration.heartBeatInterval
            try? await Task.sleep(for: .seconds(pause))
        }
    }

    static func connect(_ context: StorageContext, _ tracker: ServerAddress) async throws -> FDFSConnection {
        try await FDFSConnection.connect(
            host: tracker.host, port: tracker.port, group: context.eventLoopGroup,
            connectTimeout: .seconds(Int64(context.configuration.connectTimeout)),
            networkTimeout: .seconds(Int64(context.configuration.networkTimeout)),
            localAddress: context.outgoingBindAddress)
    }

    private func session(joined: () -> Void) async throws {
        let connection = try await Self.connect(context, tracker)
        defer { connection.close() }

        let myIPText = try await connection.call(.storageGetMyIP, body: StorageGetMyIPRequest(group: configuration.group, port: Int32(configuration.port)).encoded(), maxResponse: 256)
        if context.myIP == nil {
            let ip = String(decoding: myIPText.readableBytesView, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\0")))
            if GeneratedName.Source(ipv4: ip) != nil {
                context.setMyIP(ip)
                context.logger.info("tracker \(tracker) sees this storage as \(ip)")
            }
        }
        let parameters = TrackerParameters.decode(try await connection.call(.storageParameterRequest, maxResponse: 64 << 10))
        if let text = parameters["reserved_storage_space"], let reserved = ReservedSpace(parsing: text) { context.setReservedSpace(reserved) }
        if let text = parameters["storage_sync_file_max_delay"], let delay = Int(text) { context.setSyncFileMaxDelay(delay) }
        if parameters["use_trunk_file"].map({ $0 == "1" || $0 == "true" }) == true {
            context.logger.warning("tracker \(tracker) asks for trunk files, which this storage does not implement; storing plain files")
        }

        let flag = context.initFlag
        let join = StorageJoinRequest(
            group: configuration.group, storagePort: Int64(configuration.port), storePathCount: Int64(configuration.storePaths.count),
            subdirCountPerPath: Int64(configuration.subdirCountPerPath), uploadPriority: Int64(configuration.uploadPriority),
            joinTime: flag.joinTime, upTime: context.startTime, version: "6.16.1", initFlag: !flag.syncOldDone,
            status: Int8(bitPattern: context.myStatus ?? StorageStatus.initial.rawValue), storageID: "",
            currentTrackerIP: tracker.host, trackers: configuration.trackers.map(\.description))
        let response = try StorageJoinResponse.decode(try await connection.call(.storageJoin, body: join.encoded(), maxResponse: 64))
        context.setMyStatus(response.status)
        joined()
        context.logger.info("joined tracker \(tracker), status \(StorageStatus(rawValue: response.status)?.name ?? "\(response.status)")")

        // Initial sync negotiation, once per storage life (reference §6.5).
        if !context.initFlag.syncOldDone && context.claimNegotiation() {
            defer { context.endNegotiation() }
            let body = try await connection.call(.storageSyncDestRequest, maxResponse: 64)
            let source = try StorageSyncSource.decodeOptional(body)
            await context.updateInitFlag { flag in
                flag.syncSource = source?.sourceID ?? ""
                flag.syncUntil = source?.untilTimestamp ?? 0
                flag.syncOldDone = true
            }
            context.logger.info("initial sync source: \(source.map { "\($0.sourceID) until \($0.untilTimestamp)" } ?? "none")")
        }
        while !context.initFlag.syncOldDone {
            try await Task.sleep(for: .milliseconds(200))
        }
        let current = context.initFlag
        _ = try await connection.call(.storageSyncNotify, body: StorageSyncSource(sourceID: current.syncSource, untilTimestamp: current.syncUntil).encoded(), maxResponse: 0)

        var lastBeat = Date.distantPast, lastDisk = Date.distantPast, lastSyncReport = Date.distantPast
        while !Task.isCancelled {
            let now = Date()
            if now.timeIntervalSince(lastBeat) >= Double(configuration.heartBeatInterval) {
                lastBeat = now
                let body = StorageBeatRequest(counters: context.takeChangedCounters()).encoded()
                try handle(try await connection.call(.storageBeat, body: body, maxResponse: 64 << 10))
            }
            if now.timeIntervalSince(lastSyncReport) >= Double(configuration.heartBeatInterval), let synced = context.takeChangedSyncTimestamps() {
                lastSyncReport = now
                let members = context.members.map(\.id)
                let ids = members.isEmpty ? Array(synced.keys).sorted() : members
                let report = StorageSyncReport(entries: ids.map { .init(sourceID: $0, timestamp: Int32(truncatingIfNeeded: synced[$0] ?? 0)) })
                try handle(try await connection.call(.storageSyncReport, body: report.encoded(), maxResponse: 64 << 10))
            }
            if now.timeIntervalSince(lastDisk) >= Double(configuration.statReportInterval) {
                lastDisk = now
                let (store, count) = (context.store, configuration.storePaths.count)
                let paths = try await context.fileIO {
                    (0..<count).map {
                        let disk = store.diskUsage($0)
                        return StorePathUsage(totalMB: disk.totalMB, freeMB: disk.freeMB)
                    }
                }
                let usage = StorageDiskUsageReport(paths: paths)
                try handle(try await connection.call(.storageReportDiskUsage, body: usage.encoded(), maxResponse: 64 << 10))
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Applies a beat/disk/sync-report reply: the group member list when it changed.
    private func handle(_ body: ByteBuffer) throws {
        let response = try TrackerBeatResponse.decode(body)
        guard let briefs = response.members else { return }
        let members = briefs.map { GroupMember(id: $0.id, ip: $0.ip, port: Int($0.port), status: $0.status) }
        context.setMembers(members, from: tracker.description)
        if let me = members.first(where: { $0.ip == context.myIP && $0.port == configuration.port }) {
            context.setMyStatus(me.status)
        }
        context.logger.debug("group members: \(members.map { "\($0.ip):\($0.port)=\(StorageStatus(rawValue: $0.status)?.name ?? "?")" }.joined(separator: ", "))")
    }
}

/// One-off calls to the trackers from sync tasks (SYNC_SRC_REQ, REPORT_STATUS), each on its own
/// short connection that ends with QUIT, as the C storage does.
enum TrackerCalls {
    /// The first tracker's answer.
    static func first(_ context: StorageContext, _ command: FDFSCommand, _ body: ByteBuffer) async throws -> ByteBuffer {
        var lastError: (any Error)?
        for tracker in context.configuration.trackers {
            do {
                let connection = try await TrackerReporter.connect(context, tracker)
                defer { Task { await connection.quit() } }
                return try await connection.call(command, body: body, maxResponse: 64 << 10)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? StorageError(.ENOENT, "no tracker configured")
    }

    /// Sends to every tracker; errors are logged.
    static func all(_ context: StorageContext, _ command: FDFSCommand, _ body: ByteBuffer) async {
        for tracker in context.configuration.trackers {
            do {
                let connection = try await TrackerReporter.connect(context, tracker)
                _ = try await connection.call(command, body: body, maxResponse: 64 << 10)
                await connection.quit()
            } catch {
                context.logger.warning("\(command) to tracker \(tracker) failed: \(error)")
            }
        }
    }
}
