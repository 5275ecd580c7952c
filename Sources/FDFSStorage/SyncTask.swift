import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Replays this storage's binlog to one peer (reference §6.2 – §6.5), remembering its place in
/// `<peer ip>_<port>.mark` after every batch. A restart resumes from the mark; records sent
/// again are idempotent on the receiver (EEXIST / ENOENT are success), so nothing is lost and
/// nothing is duplicated.
final class SyncTask: Sendable {
    let context: StorageContext
    let peer: GroupMember
    let markPath: String

    init(context: StorageContext, peer: GroupMember) {
        self.context = context
        self.peer = peer
        self.markPath = context.configuration.syncDirectory + "/" + SyncMark.fileName(peerIP: peer.ip, port: peer.port)
    }

    var configuration: StorageConfiguration { context.configuration }
    var myID: String { context.myIP ?? configuration.bindAddress ?? "" }
    var peerStatus: StorageStatus? { context.memberStatus(ip: peer.ip, port: peer.port).flatMap(StorageStatus.init(rawValue:)) }

    struct Stop: Error {}

    func run() async {
        while !Task.isCancelled {
            do {
                try await cycle()
            } catch is CancellationError {
                return
            } catch is Stop {
                return
            } catch {
                context.logger.warning("sync to \(peer.ip):\(peer.port): \(error); retrying")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func sleep(_ milliseconds: Int) async throws {
        try await Task.sleep(for: .milliseconds(milliseconds))
    }

    /// One connection's worth of syncing.
    private func cycle() async throws {
        // Wait for a status in which the peer can be synced.
        var status = peerStatus
        while true {
            guard let current = status else { throw Stop() }
            switch current {
            case .deleted, .ipChanged, StorageStatus.none: throw Stop()
            case .initial, .offline, .online: try await sleep(500); status = peerStatus; continue
            default: break
            }
            break
        }
        var mark = try await loadOrCreateMark(status: status!)
        if !mark.needSyncOld {
            while peerStatus != .active {
                if Self.isGone(peerStatus) { throw Stop() }
                try await sleep(500)
            }
        }
        let connection = try await FDFSConnection.connect(
            host: peer.ip, port: peer.port, group: context.eventLoopGroup,
            connectTimeout: .seconds(Int64(configuration.connectTimeout)), networkTimeout: .seconds(Int64(configuration.networkTimeout)),
            localAddress: context.outgoingBindAddress)
        defer { connection.close() }
        _ = try await connection.call(.reportServerID, body: ReportServerIDRequest(storageID: myID).encoded(), maxResponse: 0)
        context.logger.info("syncing to \(peer.ip):\(peer.port) from binlog \(mark.binlogIndex) offset \(mark.binlogOffset)\(mark.needSyncOld ? " (full sync until \(mark.untilTimestamp))" : "")")

        if peerStatus == .waitSync {
            await reportPeer(.syncing)
        }
        if peerStatus == .syncing && mark.needSyncOld && mark.syncOldDone {
            await reportPeer(.offline)
        }
        var reader = BinlogReader(directory: configuration.syncDirectory, index: mark.binlogIndex, offset: mark.binlogOffset)
        // Regenerated appender files sent whole (old name → bytes sent): their later append
        // records went with them.
        var sentWhole: [String: Int64] = [:]
        var lastLagUpdate = Date.distantPast
        var lastTalk = Date()
        var reportedOffline = false
        var finishedFullSync = false
        while !Task.isCancelled {
            let current = peerStatus
            guard current == .active || current == .syncing || (current == .waitSync && mark.needSyncOld) else {
                if Self.isGone(current) { throw Stop() }
                return
            }
            let writerIndex = context.binlog.currentIndex
            let read = try await context.fileIO { [reader] in
                var advanced = reader
                let batch = advanced.readBatch(limit: 64, writerIndex: writerIndex)
                return (batch, advanced)
            }
            let batch = read.0
            reader = read.1
            if batch.isEmpty {
                context.metrics.setSyncLag(peer: peerName, records: 0, seconds: 0)
                if mark.needSyncOld && !mark.syncOldDone {
                    mark.syncOldDone = true
                    try await save(mark)
                    context.logger.info("full sync to \(peer.ip):\(peer.port) done")
                    finishedFullSync = true
                }
                // A full sync finished here is reported whatever status we see: with several
                // trackers the one that has the peer WAIT_SYNC or SYNCING needs it, and the others
                // ignore OFFLINE for a member they list ONLINE or ACTIVE.
                if mark.needSyncOld && mark.syncOldDone && !reportedOffline && (finishedFullSync || current == .syncing || current == .waitSync) {
                    reportedOffline = true
                    await reportPeer(.offline)
                }
                // Often enough for the peer's network_timeout, which closes idle connections.
                if Date().timeIntervalSince(lastTalk) >= Double(min(configuration.heartBeatInterval, max(1, configuration.networkTimeout / 2))) {
                    _ = try await connection.call(.activeTest, maxResponse: 0)
                    lastTalk = Date()
                }
                try await sleep(configuration.syncWaitMsec)
                continue
            }
            for entry in batch {
                mark.scanRowCount += 1
                if let record = entry.record, needsSync(record, mark) {
                    try await send(record, over: connection, skipped: &mark.skippedFiles, sentWhole: &sentWhole)
                    mark.syncRowCount += 1
                } else if entry.record == nil {
                    context.logger.warning("skipping a malformed binlog line before binlog \(entry.nextIndex) offset \(entry.nextOffset)")
                }
                mark.binlogIndex = entry.nextIndex
                mark.binlogOffset = entry.nextOffset
            }
            try await save(mark)
            lastTalk = Date()
            if Date().timeIntervalSince(lastLagUpdate) >= 1 {
                lastLagUpdate = Date()
                await updateLag(reader)
            }
        }
    }

    /// `ip:port` of the peer, the label of its lag metrics.
    var peerName: String { "\(peer.ip):\(peer.port)" }

    /// Sets the lag metrics from the records after `reader`'s position (read on the blocking
    /// pool; at most once a second while records flow, and 0 whenever the peer is caught up).
    private func updateLag(_ reader: BinlogReader) async {
        let writerIndex = context.binlog.currentIndex
        guard let pending = try? await context.fileIO({ reader.pending(writerIndex: writerIndex) }) else { return }
        let age = pending.oldestTimestamp.map { max(0, Int64(time(nil)) - Int64($0)) } ?? 0
        context.metrics.setSyncLag(peer: peerName, records: pending.records, seconds: pending.records == 0 ? 0 : age)
    }

    /// The mark file, or a new one set up with the tracker's answer to SYNC_SRC_REQ.
    private func loadOrCreateMark(status: StorageStatus) async throws -> SyncMark {
        let markPath = self.markPath
        var existing: SyncMark?
        if status.rawValue > StorageStatus.waitSync.rawValue {
            existing = try await context.fileIO { SyncMark.load(path: markPath) }
        }
        if var mark = existing {
            // The tracker made us the full-sync source after the mark was written (the peer is
            // new or was wiped: SYNC_DEST_REQ recorded a newer `until`): start over. Asked whatever
            // status we see, because with several trackers only the one that answered the
            // peer's SYNC_DEST_REQ has it WAIT_SYNC while the others may list it ONLINE or ACTIVE.
            if let source = try? await askSource(), source.sourceID == myID, source.untilTimestamp > mark.untilTimestamp {
                mark = SyncMark()
                mark.needSyncOld = true
                mark.untilTimestamp = source.untilTimestamp
                try await save(mark)
            }
            return mark
        }
        while !context.initFlag.syncOldDone { try await sleep(200) }
        var mark = SyncMark()
        if let source = try await askSource() {
            mark.needSyncOld = source.sourceID == myID
            mark.untilTimestamp = source.untilTimestamp
        }
        if !mark.needSyncOld && mark.untilTimestamp > 0 {
            // Records older than `until` reach the peer through its full-sync source. The binlog
            // is scanned on the file I/O threads.
            let (directory, binlog, until) = (configuration.syncDirectory, context.binlog, mark.untilTimestamp)
            let start = try await context.fileIO { () -> (index: Int, offset: Int64) in
                var start = (index: 0, offset: Int64(0))
                var reader = BinlogReader(directory: directory, index: 0, offset: 0)
                while true {
                    let batch = reader.readBatch(limit: 256, writerIndex: binlog.currentIndex)
                    if batch.isEmpty { return start }
                    for entry in batch {
                        if let record = entry.record, Int64(record.timestamp) >= until { return start }
                        start = (entry.nextIndex, entry.nextOffset)
                    }
                }
            }
            mark.binlogIndex = start.index
            mark.binlogOffset = start.offset
        }
        try await save(mark)
        return mark
    }

    /// Writes the mark file on the file I/O threads. The task waits for each write, so its
    /// marks reach the file in the order it saves them.
    private func save(_ mark: SyncMark) async throws {
        let markPath = self.markPath
        try await context.fileIO { try mark.write(path: markPath) }
    }

    /// ``statFile(_:follow:)`` on the file I/O threads.
    func fileStatus(_ path: String, follow: Bool = true) async throws -> stat? {
        try await context.fileIO { try statFile(path, follow: follow) }
    }

    private func askSource() async throws -> StorageSyncSource? {
        let body = try await TrackerCalls.first(context, .storageSyncSourceRequest, StorageSyncSourceRequest(group: configuration.group, destinationID: peer.id).encoded())
        return try StorageSyncSource.decodeOptional(body)
    }

    private func reportPeer(_ status: StorageStatus) async {
        context.logger.info("reporting \(peer.ip):\(peer.port) as \(status.name)")
        let brief = StorageBrief(status: status.rawValue, port: Int32(peer.port), id: peer.id, ip: peer.ip)
        await TrackerCalls.all(context, .storageReportStatus, StorageReportStatusRequest(group: configuration.group, storage: brief).encoded())
    }

    /// Which records go to this peer (reference §6.2).
    func needsSync(_ record: BinlogRecord, _ mark: SyncMark) -> Bool {
        if record.isSource { return true }
        switch record.operation {
        case .append, .modify, .truncate: return false
        default: return mark.needSyncOld && !mark.syncOldDone && Int64(record.timestamp) <= mark.untilTimestamp
        }
    }

    func localPath(_ remote: String) -> String? {
        guard let id = try? FileID(group: configuration.group, remoteFilename: remote) else { return nil }
        return try? context.store.localPath(id)
    }

    static func isGone(_ status: StorageStatus?) -> Bool {
        guard let status else { return true }
        return status == .deleted || status == .ipChanged || status == .none
    }
}
