import FDFSProtocol
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The receiving side of replication (reference §6.3): REPORT_SERVER_ID (9) and the sync
/// commands 16, 17, 18, 19, 25, 35, 37, 40. Applied changes are logged in lower case with the
/// source's timestamp.
extension Session {
    func reportServerID() async throws -> Reply {
        let request = try ReportServerIDRequest.decode(try await readBody())
        guard !request.storageID.isEmpty else { throw StorageError.invalid("empty storage id") }
        sourceID = request.storageID
        logger.debug("sync connection from storage \(request.storageID)")
        return .status(.ok)
    }

    /// Credits the sender for SYNC_REPORT.
    private func synced(_ timestamp: UInt32) {
        context.recordSynced(from: sourceID ?? peer, timestamp: Int64(timestamp))
    }

    /// Makes sure the `HH/HH` directory of a path exists (a peer may use more subdirs).
    private static func ensureDirectory(of path: String) {
        let dir = String(path[..<path.lastIndex(of: "/")!])
        if StorePaths.directoryExists(dir) { return }
        mkdir(String(dir[..<dir.lastIndex(of: "/")!]), 0o755)
        mkdir(dir, 0o755)
    }

    func syncCopyFile() async throws -> Reply {
        let create = header.command == .syncCreateFile
        let contentFollows = header.status != FDFSStatus.EEXIST.rawValue
        var head = try await readExactly(8)
        guard let nameLength = try SyncFileHead.peekNameLength(head) else { throw StorageError.invalid("short sync head") }
        var rest = try await readExactly(SyncFileHead.fixedSize - 8 + nameLength)
        head.writeBuffer(&rest)
        let request = try SyncFileHead.decode(&head, bodyLength: header.bodyLength, contentFollows: contentFollows)
        try checkGroup(request.group)
        let id = try fileID(request.remoteFilename)
        let path = try store.localPath(id)
        context.appenderChecksums.forget(path)
        let operation: BinlogRecord.Operation = create ? .create : .update
        if !contentFollows {
            await log(operation, source: false, id.remoteFilename, timestamp: Int64(request.timestamp))
            synced(request.timestamp)
            return .status(.EEXIST)
        }
        if create, let info = try await fileStatus(path, follow: false), isRegular(info), Int64(info.st_size) == request.fileSize {
            try await drain()
            await log(operation, source: false, id.remoteFilename, timestamp: Int64(request.timestamp))
            synced(request.timestamp)
            return .status(.EEXIST)
        }
        let check = ReplicaCheck(id)
        if let why = check?.mismatch(size: request.fileSize, crc32: nil) {
            try await drain()
            context.countSyncIn(bytes: 0, success: false)
            throw StorageError.invalid("the copy of \(id) sent by \(sourceID ?? peer) does not match its name (\(why)); refused")
        }
        let received: (path: String, crc: UInt32, mtime: Int64)
        do {
            received = try await receiveToTemp(pathIndex: id.storePathIndex, length: request.fileSize, computeCRC: check != nil)
        } catch {
            context.countSyncIn(bytes: 0, success: false)
            throw error
        }
        if let why = check?.mismatch(size: request.fileSize, crc32: received.crc) {
            _ = try? await context.fileIO { unlink(received.path) }
            context.countSyncIn(bytes: 0, success: false)
            throw StorageError.invalid("the copy of \(id) sent by \(sourceID ?? peer) does not match its name (\(why)); refused")
        }
        let timestamp = Int(request.timestamp)
        try await context.fileIO {
            var times = [timespec(tv_sec: timestamp, tv_nsec: 0), timespec(tv_sec: timestamp, tv_nsec: 0)]
            utimensat(AT_FDCWD, received.path, &times, 0)
            Self.ensureDirectory(of: path)
            guard rename(received.path, path) == 0 else {
                let failure = StorageError.system("rename into \(id)")
                unlink(received.path)
                throw failure
            }
        }
        await log(operation, source: false, id.remoteFilename, timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        context.countSyncIn(bytes: request.fileSize, success: true)
        return .status(.ok)
    }

    func syncDeleteFile() async throws -> Reply {
        let request = try SyncDeleteRequest.decode(try await readBody())
        try checkGroup(request.group)
        let id = try fileID(request.remoteFilename)
        let path = try store.localPath(id)
        context.appenderChecksums.forget(path)
        do {
            try await context.fileIO {
                guard unlink(path) == 0 else { throw StorageError.system("delete \(id)") }
            }
        } catch let failure as StorageError {
            if failure.status == .ENOENT { synced(request.timestamp) }
            throw failure
        }
        await log(.delete, source: false, id.remoteFilename, timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        return .status(.ok)
    }

    func syncCreateLink() async throws -> Reply {
        let request = try SyncLinkRequest.decode(try await readBody())
        try checkGroup(request.group)
        let dest = try fileID(request.destFilename)
        let source = try fileID(request.sourceFilename)
        let destPath = try store.localPath(dest), sourcePath = try store.localPath(source)
        do {
            try await context.fileIO {
                guard try statFile(sourcePath) != nil else { throw StorageError.notFound("link target \(source) does not exist") }
                Self.ensureDirectory(of: destPath)
                guard symlink(sourcePath, destPath) == 0 else { throw StorageError.system("symlink \(dest)") }
            }
        } catch let failure as StorageError {
            if failure.status == .EEXIST { synced(request.timestamp) }
            throw failure
        }
        await log(.link, source: false, dest.remoteFilename, [source.remoteFilename], timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        return .status(.ok)
    }

    func syncModifyFile() async throws -> Reply {
        let append = header.command == .syncAppendFile
        var head = try await readExactly(8)
        guard let nameLength = try SyncModifyHead.peekNameLength(head) else { throw StorageError.invalid("short sync head") }
        var rest = try await readExactly(SyncModifyHead.fixedSize - 8 + nameLength)
        head.writeBuffer(&rest)
        let request = try SyncModifyHead.decode(&head, bodyLength: header.bodyLength)
        try checkGroup(request.group)
        let id = try appenderID(request.remoteFilename)
        let path = try store.localPath(id)
        context.appenderChecksums.forget(path)
        let end = request.offset + request.length
        guard let info = try await fileStatus(path, follow: false), isRegular(info) else {
            throw StorageError.notFound("\(id) does not exist here; needs a full resync")
        }
        let size = Int64(info.st_size)
        // An append this copy has part of (offset < size < end) is written whole at its
        // offset: the copy was sent while the source was still writing that append (a create
        // or update sends the file as it is then), and the bytes it has of it are the same.
        // Refusing it sent the whole file again, once per such append.
        let write = size >= request.offset && (!append || size < end)
        guard write else {
            // Already applied (EEXIST), or this copy is behind and needs the whole file (ENOENT).
            try await drain()
            if size >= end { synced(request.timestamp); return .status(.EEXIST) }
            throw StorageError.notFound("\(id) has \(size) bytes, the change needs \(request.offset)...\(end)")
        }
        let fd = try await openForWriting(path)
        do {
            _ = try await receive(into: fd, offset: request.offset, length: request.length, crc: nil)
        } catch {
            await context.closeFile(fd, truncatingTo: append ? size : nil)
            context.countSyncIn(bytes: 0, success: false)
            throw error
        }
        await context.closeFile(fd)
        let timestamp = Int(request.timestamp)
        try await context.fileIO {
            var times = [timespec(tv_sec: timestamp, tv_nsec: 0), timespec(tv_sec: timestamp, tv_nsec: 0)]
            utimensat(AT_FDCWD, path, &times, 0)
        }
        await log(append ? .append : .modify, source: false, id.remoteFilename, [String(request.offset), String(request.length)], timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        context.countSyncIn(bytes: request.length, success: true)
        return .status(.ok)
    }

    func syncTruncateFile() async throws -> Reply {
        let request = try SyncTruncateRequest.decode(try await readBody())
        try checkGroup(request.group)
        let id = try appenderID(request.remoteFilename)
        let path = try store.localPath(id)
        context.appenderChecksums.forget(path)
        guard let info = try await fileStatus(path, follow: false), isRegular(info) else {
            throw StorageError.notFound("\(id) does not exist here")
        }
        guard Int64(info.st_size) == request.oldSize else {
            synced(request.timestamp)
            return .status(.EEXIST)
        }
        try await context.fileIO {
            guard truncate(path, off_t(request.newSize)) == 0 else { throw StorageError.system("truncate \(id)") }
        }
        await log(.truncate, source: false, id.remoteFilename, [String(request.oldSize), String(request.newSize)], timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        return .status(.ok)
    }

    func syncRenameFile() async throws -> Reply {
        let request = try SyncRenameRequest.decode(try await readBody())
        try checkGroup(request.group)
        let newID = try fileID(request.newFilename), oldID = try fileID(request.oldFilename)
        let newPath = try store.localPath(newID), oldPath = try store.localPath(oldID)
        context.appenderChecksums.forget(oldPath)
        if try await fileStatus(newPath, follow: false) != nil {
            synced(request.timestamp)
            return .status(.EEXIST)
        }
        guard let old = try await fileStatus(oldPath, follow: false) else { throw StorageError.notFound("\(oldID) does not exist here") }
        if let check = ReplicaCheck(newID), let why = try await mismatch(oldPath, old, check) {
            // This copy missed changes (appends the source could no longer send once the file
            // was renamed there). The old name is gone at the source: drop the copy and answer
            // ENOENT, so the source sends the file whole under its new name.
            logger.warning("SYNC_RENAME_FILE: the copy of \(oldID) does not match \(newID) (\(why)); dropped, the source sends the file again")
            _ = try? await context.fileIO { unlink(oldPath) }
            throw StorageError.notFound("the copy of \(oldID) does not match \(newID)")
        }
        try await context.fileIO {
            Self.ensureDirectory(of: newPath)
            guard rename(oldPath, newPath) == 0 else { throw StorageError.system("rename \(oldID)") }
        }
        await log(.rename, source: false, newID.remoteFilename, [oldID.remoteFilename], timestamp: Int64(request.timestamp))
        synced(request.timestamp)
        return .status(.ok)
    }

    /// The ID of a file that sync may change in place: only appender files change; every
    /// other name is immutable (and a normal one records its size and CRC32).
    private func appenderID(_ remote: String) throws(StorageError) -> FileID {
        let id = try fileID(remote)
        guard id.kind == .appender else { throw StorageError.invalid("\(header.command) of \(id), which is not an appender file") }
        return id
    }

    /// Why the local copy at `path` does not match what `check` expects, or nil when it does.
    private func mismatch(_ path: String, _ info: stat, _ check: ReplicaCheck) async throws -> String? {
        guard isRegular(info) else { return "not a regular file" }
        if let why = check.mismatch(size: Int64(info.st_size), crc32: nil) { return why }
        let crc = try await context.blocking { try FileChecksum.crc32(path: path) }
        return check.mismatch(size: Int64(info.st_size), crc32: crc)
    }
}
