import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What each binlog record sends to the peer (reference §6.2: the record → command table),
/// with the fallbacks to sending the whole file when the peer's copy cannot be patched.
extension SyncTask {
    /// Sends one record; a status that means "already so" counts as success. `skipped` names
    /// the files with changes that could not be sent because the file was gone here by then:
    /// their copy on the peer is behind, so a later rename must not just rename it.
    func send(_ record: BinlogRecord, over connection: FDFSConnection, skipped: inout Set<String>, sentWhole: inout [String: Int64]) async throws {
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
    func sendRenamedWhole(_ newFilename: String, path: String, oldFilename: String, timestamp: UInt32, over connection: FDFSConnection, skipped: inout Set<String>) async throws {
        context.logger.debug("sync to \(peer.ip):\(peer.port): \(oldFilename) missed changes before it was renamed to \(newFilename); sending the file whole")
        if try await !sendFile(newFilename, path: path, command: .syncCreateFile, timestamp: timestamp, over: connection) {
            skipped.insert(newFilename)
        }
        let delete = SyncDeleteRequest(timestamp: timestamp, group: configuration.group, remoteFilename: oldFilename)
        try await expect(ok: [.ENOENT]) { try await connection.call(.syncDeleteFile, body: delete.encoded(), maxResponse: 0) }
    }

    /// Runs a call, treating the listed statuses as success.
    func expect(ok: Set<FDFSStatus>, _ call: () async throws -> ByteBuffer) async throws {
        do { _ = try await call() } catch let error as FDFSClientError where error.status.map(ok.contains) == true {}
    }

    /// Opens `path` read-only and runs `body` with the descriptor; opening and closing run on
    /// the file I/O threads.
    func withFile(_ path: String, _ body: (CInt) async throws -> Void) async throws {
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
    func sendFile(_ remote: String, path: String, command: FDFSCommand, timestamp: UInt32, over connection: FDFSConnection) async throws -> Bool {
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
    func sendOpenFile(_ remote: String, fd: CInt, info: stat, path: String, command: FDFSCommand, timestamp: UInt32, over connection: FDFSConnection) async throws -> Bool {
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
}
