import FDFSProtocol
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// UPLOAD_FILE (11), UPLOAD_APPENDER_FILE (23) and UPLOAD_SLAVE_FILE (21) (reference §3.2, §3.3).
extension Session {
    /// Receives `length` content bytes into a new temp file of store path `index`; returns
    /// the temp path, the CRC32 and the file's mtime. The temp file is removed on any failure.
    /// Creating, writing, stating and closing the file run on the blocking pool.
    func receiveToTemp(pathIndex index: Int, length: Int64, computeCRC: Bool) async throws -> (path: String, crc: UInt32, mtime: Int64) {
        let temp = store.newTempPath(index)
        let fd = try await context.fileIO { () throws -> CInt in
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageError.system("create \(temp)") }
            return fd
        }
        do {
            let crc = try await receive(into: fd, offset: 0, length: length, crc: computeCRC ? CRC32() : nil)
            let mtime = try await context.fileIO { () -> Int64 in
                var info = stat()
                fstat(fd, &info)
                close(fd)
                return Int64(info.st_mtim.tv_sec)
            }
            return (temp, crc?.value ?? 0, mtime)
        } catch {
            _ = try? await context.fileIO {
                close(fd)
                unlink(temp)
            }
            throw error
        }
    }

    func upload(appender: Bool) async throws -> Reply {
        let command = appender ? "upload_appender" : "upload"
        let head = try UploadRequestHead.decode(try await readExactly(UploadRequestHead.size), bodyLength: header.bodyLength)
        let store = self.store
        let reserved = context.reservedSpace
        let source = sourceForNames
        let requested = head.storePathIndex
        let size = head.fileSize
        // statvfs of the store paths, and the directory rotation (it may rewrite
        // storage_stat.dat), on the blocking pool.
        let (pathIndex, directory) = try await context.fileIO { () throws -> (Int, (UInt8, UInt8)) in
            let pathIndex = try store.choosePath(requested: requested, size: size, reserved: reserved)
            return (pathIndex, store.chooseDirectory(name: NameGenerator.temporaryName(source: source, size: size)))
        }
        let ext = NameGenerator.formattedExtension(head.fileExtension)
        let received: (path: String, crc: UInt32, mtime: Int64)
        do {
            received = try await receiveToTemp(pathIndex: pathIndex, length: head.fileSize, computeCRC: true)
        } catch {
            context.count("upload", success: false)
            throw error
        }
        let group = self.group
        let id: FileID
        do {
            id = try await context.fileIO {
                do {
                    return try NameGenerator.place(
                        temp: received.path, store: store, group: group, pathIndex: pathIndex, directory: directory,
                        source: source, timestamp: UInt32(truncatingIfNeeded: received.mtime), size: size,
                        crc32: received.crc, appender: appender, formattedExtension: ext)
                } catch {
                    unlink(received.path)
                    throw error
                }
            }
        } catch {
            context.count("upload", success: false)
            throw error
        }
        if appender, let path = try? store.localPath(id), let info = try? await fileStatus(path, follow: false) {
            context.appenderChecksums.uploaded(path, crc: received.crc, info: info)
        }
        await log(.create, source: true, id.remoteFilename, timestamp: received.mtime)
        context.count("upload", success: true, bytes: head.fileSize)
        logger.debug("\(command) stored \(id) (\(head.fileSize) bytes)")
        return .status(.ok, UploadResponse(id).encoded())
    }

    func uploadSlave() async throws -> Reply {
        var fixed = try await readExactly(8)
        let masterLength = fixed.getInteger(at: fixed.readerIndex, endianness: .big, as: Int64.self)!
        guard masterLength > 10, masterLength < 128 else {
            throw StorageError.invalid("UPLOAD_SLAVE master_filename_len \(masterLength) outside 11...127")
        }
        var rest = try await readExactly(UploadSlaveRequestHead.fixedSize - 8 + Int(masterLength))
        fixed.writeBuffer(&rest)
        let head = try UploadSlaveRequestHead.decode(&fixed, bodyLength: header.bodyLength)
        let master = try fileID(head.masterRemoteFilename)
        let slave: FileID
        do { slave = try master.slave(prefix: head.prefix, ext: head.fileExtension) } catch {
            throw StorageError.invalid(error.message)
        }
        let store = self.store
        let reserved = context.reservedSpace
        let size = head.fileSize
        let masterPath = try store.localPath(master)
        let slavePath = try store.localPath(slave)
        try await context.fileIO {
            guard try statFile(masterPath) != nil else { throw StorageError.notFound("master file \(master) does not exist") }
            guard try statFile(slavePath, follow: false) == nil else { throw StorageError(.EEXIST, "slave file \(slave) already exists") }
            guard store.hasSpace(master.storePathIndex, size: size, reserved: reserved) else {
                throw StorageError(.ENOSPC, "store path \(master.storePathIndex) has no room for \(size) bytes")
            }
        }
        let received = try await receiveToTemp(pathIndex: master.storePathIndex, length: head.fileSize, computeCRC: false)
        do {
            try await context.fileIO {
                defer { unlink(received.path) }
                guard link(received.path, slavePath) == 0 else { throw StorageError.system("link \(slavePath)") }
            }
        } catch {
            context.count("upload", success: false)
            throw error
        }
        await log(.create, source: true, slave.remoteFilename, timestamp: received.mtime)
        context.count("upload", success: true, bytes: head.fileSize)
        return .status(.ok, UploadResponse(slave).encoded())
    }
}
