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
    private func fileStatus(_ path: String, follow: Bool = true) async throws -> stat? {
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

    private func localPath(_ remote: String) -> String? {
        guard let id = try? FileID(group: configuration.group, remoteFilename: remote) else { return nil }
        return try? context.store.localPath(id)
    }

    /// Sends one record; a status that means "already so" counts as success. `skipped` names
    /// the files with changes that could not be sent because the file was gone here by then:
    /// their copy on the peer is behind, so a later rename must not just rename it.
    private func send(_ record: BinlogRecord, over connection: FDFSConnection, skipped: inout Set<String>, sentWhole: inout [String: Int64]) async throws {
        guard var path = localPath(record.filename) else {
            context.logger.warning("binlog record with an invalid name skipped: \(record)")
            return
        }
        let timestamp = UInt32(truncatingIfNeeded: record.timestamp)
        var regenerated = false
        if record.isSource, [.create, .append, .modify].contains(record.operation),
           let renamed = context.regeneratedAppenders.newName(of: record.filename), let renamedPath = localPath(renamed) {
            // An appender file regenerated here before this record was sent: its bytes are
            // the new name's, sent for the old name the peer has (RegeneratedAppenders); the
            // rename record then renames the peer's copy.
            path = renamedPath
            regenerated = true
        }
        /// Sends the whole current file for `record`'s name; remembers it when that is a
        /// regenerated appender file's final content.
        func sendWhole(_ command: FDFSCommand) async throws {
            if try await !sendFile(record.filename, path: path, command: command, timestamp: timestamp, over: connection) {
                skipped.insert(record.filename)
            } else if regenerated, let info = try? await fileStatus(path) {
                sentWhole[record.filename] = Int64(info.st_size)
            }
        }
        let group = configuration.group
        switch (record.operation, record.isSource) {
        case (.create, _), (.update, _):
            try await sendWhole(record.operation == .create ? .syncCreateFile : .syncUpdateFile)
        case (.delete, _):
            skipped.remove(record.filename)
            if (try? await fileStatus(path, follow: false)) ?? nil != nil { return }
            try await expect(ok: [.ENOENT]) { try await connection.call(.syncDeleteFile, body: SyncDeleteRequest(timestamp: timestamp, group: group, remoteFilename: record.filename).encoded(), maxResponse: 0) }
        case (.append, _), (.modify, _):
            let (offset, length) = record.numbers
            guard offset >= 0, length >= 0, offset <= Int64.max - length else { return }
            if let whole = sentWhole[record.filename], offset + length <= whole { return }
            guard let info = try? await fileStatus(path) else {
                // Gone since: the record that removed or renamed the file handles it.
                skipped.insert(record.filename)
                return
            }
            guard Int64(info.st_size) >= offset + length else {
                // The file shrank since (a later truncate): these bytes no longer exist here, and
                // skipping them could leave the copy behind for good (created from an older
                // state, then patched by the later records). Send the whole current content.
                try await sendWhole(.syncUpdateFile)
                return
            }
            let head = SyncModifyHead(remoteFilename: record.filename, offset: offset, length: length, timestamp: timestamp, group: group)
            let command: FDFSCommand = record.operation == .append ? .syncAppendFile : .syncModifyFile
            do {
                var shrank = false
                try await withFile(path) { fd in
                    // Small changes are read first: a consistent copy of bytes that a later
                    // truncate could otherwise take away in the middle of the send.
                    var bytes: ByteBuffer?
                    if length <= Self.snapshotLimit {
                        let read = try await context.fileIO { Self.read(fd, offset: offset, length: length) }
                        guard let read, read.readableBytes == Int(length) else {
                            shrank = true
                            return
                        }
                        bytes = read
                    }
                    try await connection.send(FDFSHeader(bodyLength: Int64(head.size) + length, command: command), body: head.encoded())
                    if let bytes { try await connection.write(bytes) } else { try await connection.writeFile(descriptor: fd, offset: offset, length: length) }
                    _ = try await connection.readBody(try await connection.readHead(operation: "\(command)"), operation: "\(command)", maxResponse: 0)
                }
                if shrank {
                    try await sendWhole(.syncUpdateFile)
                    return
                }
                context.countSyncOut(bytes: length)
            } catch let error as FDFSClientError where error.status == .EEXIST {
            } catch let error as FDFSClientError where error.status == .ENOENT {
                try await sendWhole(.syncUpdateFile)
            }
        case (.truncate, _):
            let (oldSize, newSize) = record.numbers
            let request = SyncTruncateRequest(remoteFilename: record.filename, oldSize: oldSize, newSize: newSize, timestamp: timestamp, group: group)
            do {
                try await expect(ok: [.EEXIST]) { try await connection.call(.syncTruncateFile, body: request.encoded(), maxResponse: 0) }
            } catch let error as FDFSClientError where error.status == .ENOENT {
                try await sendWhole(.syncUpdateFile)
            }
        case (.link, _):
            let request = SyncLinkRequest(destFilename: record.filename, sourceFilename: record.arguments.first ?? "", timestamp: timestamp, group: group)
            try await expect(ok: [.ENOENT, .EEXIST]) { try await connection.call(.syncCreateLink, body: request.encoded(), maxResponse: 0) }
        case (.rename, true):
            let oldFilename = record.arguments.first ?? ""
            if skipped.remove(oldFilename) != nil {
                try await sendRenamedWhole(record.filename, path: path, oldFilename: oldFilename, timestamp: timestamp, over: connection, skipped: &skipped)
                return
            }
            let request = SyncRenameRequest(newFilename: record.filename, oldFilename: oldFilename, timestamp: timestamp, group: group)
            do {
                try await expect(ok: [.EEXIST]) { try await connection.call(.syncRenameFile, body: request.encoded(), maxResponse: 0) }
            } catch let error as FDFSClientError where error.status == .ENOENT {
                if try await !sendFile(record.filename, path: path, command: .syncCreateFile, timestamp: timestamp, over: connection) {
                    skipped.insert(record.filename)
                }
            }
        case (.rename, false):
            if try await !sendFile(record.filename, path: path, command: .syncCreateFile, timestamp: timestamp, over: connection) {
                skipped.insert(record.filename)
            }
        }
    }

    /// A rename whose old name missed changes here (appends that came after the file was
    /// renamed, so the old name no longer existed to send them from): renaming the peer's copy
    /// would leave it short, which a C FastDFS replica does without a check. Instead the file
    /// goes whole under its new name (SYNC_CREATE_FILE), and the old name is deleted on the
    /// peer, as the rename would have removed it.
    private func sendRenamedWhole(_ newFilename: String, path: String, oldFilename: String, timestamp: UInt32, over connection: FDFSConnection, skipped: inout Set<String>) async throws {
        context.logger.debug("sync to \(peer.ip):\(peer.port): \(oldFilename) missed changes before it was renamed to \(newFilename); sending the file whole")
        if try await !sendFile(newFilename, path: path, command: .syncCreateFile, timestamp: timestamp, over: connection) {
            skipped.insert(newFilename)
        }
        let delete = SyncDeleteRequest(timestamp: timestamp, group: configuration.group, remoteFilename: oldFilename)
        try await expect(ok: [.ENOENT]) { try await connection.call(.syncDeleteFile, body: delete.encoded(), maxResponse: 0) }
    }

    /// Runs a call, treating the listed statuses as success.
    private func expect(ok: Set<FDFSStatus>, _ call: () async throws -> ByteBuffer) async throws {
        do { _ = try await call() } catch let error as FDFSClientError where error.status.map(ok.contains) == true {}
    }

    /// Opens `path` read-only and runs `body` with the descriptor; opening and closing run on
    /// the file I/O threads.
    private func withFile(_ path: String, _ body: (CInt) async throws -> Void) async throws {
        let fd = try await context.fileIO { () throws -> CInt in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.system("open \(path)") }
            return fd
        }
        do { try await body(fd) } catch {
            await context.closeFile(fd)
            throw error
        }
        await context.closeFile(fd)
    }

    /// SYNC_CREATE_FILE / SYNC_UPDATE_FILE with the file's current content; skipped if the file
    /// is gone (a later delete or rename record follows). False when skipped. Opening, fstat,
    /// reading and closing run on the file I/O threads.
    @discardableResult
    private func sendFile(_ remote: String, path: String, command: FDFSCommand, timestamp: UInt32, over connection: FDFSConnection) async throws -> Bool {
        let opened = try await context.fileIO { () -> (fd: CInt, info: stat)? in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            var info = stat()
            fstat(fd, &info)
            return (fd, info)
        }
        guard let (fd, info) = opened else { return false }
        do {
            let sent = try await sendOpenFile(remote, fd: fd, info: info, path: path, command: command, timestamp: timestamp, over: connection)
            await context.closeFile(fd)
            return sent
        } catch {
            await context.closeFile(fd)
            throw error
        }
    }

    /// ``sendFile(_:path:command:timestamp:over:)`` once the file is open.
    private func sendOpenFile(_ remote: String, fd: CInt, info: stat, path: String, command: FDFSCommand, timestamp: UInt32, over connection: FDFSConnection) async throws -> Bool {
        guard isRegular(info) else { return false }
        var size = Int64(info.st_size)
        // Small files (appender files change while they are synced) go as a copy read now;
        // larger ones by sendfile.
        var bytes: ByteBuffer?
        if size <= Self.snapshotLimit {
            let length = size
            let read = try await context.fileIO { () throws -> ByteBuffer in
                guard let read = Self.read(fd, offset: 0, length: length) else { throw StorageError.system("read \(path)") }
                return read
            }
            size = Int64(read.readableBytes)
            bytes = read
        }
        let head = SyncFileHead(remoteFilename: remote, fileSize: size, timestamp: timestamp, group: configuration.group)
        try await connection.send(FDFSHeader(bodyLength: Int64(head.size) + size, command: command), body: head.encoded())
        if let bytes { try await connection.write(bytes) } else { try await connection.writeFile(descriptor: fd, offset: 0, length: size) }
        do {
            _ = try await connection.readBody(try await connection.readHead(operation: "\(command)"), operation: "\(command)", maxResponse: 0)
            context.countSyncOut(bytes: size)
        } catch {
            guard error.status == .EEXIST else { throw error }
        }
        return true
    }

    /// Changes and files up to this size are read into memory before they are sent.
    static let snapshotLimit: Int64 = 4 << 20

    /// Up to `length` bytes from `offset` (fewer at the end of the file); nil on a read error.
    static func read(_ fd: CInt, offset: Int64, length: Int64) -> ByteBuffer? {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Int(length))
        var done = 0
        while done < Int(length) {
            var result = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(length) - done) { pointer in
                result = pread(fd, pointer.baseAddress, Int(length) - done, off_t(offset) + off_t(done))
                return max(0, result)
            }
            if result < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if result == 0 { break }
            done += result
        }
        return buffer
    }

    static func isGone(_ status: StorageStatus?) -> Bool {
        guard let status else { return true }
        return status == .deleted || status == .ipChanged || status == .none
    }
}
