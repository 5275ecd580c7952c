import FDFSProtocol
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// APPEND_FILE (24), MODIFY_FILE (34), TRUNCATE_FILE (36) and REGENERATE_APPENDER_FILENAME (38)
/// (reference §3.8, §3.10). All work on appender files only.
extension Session {
    /// Validates an appender file name and returns its ID, path and current size.
    func appenderFile(_ remote: String) async throws -> (FileID, String, Int64) {
        let id = try fileID(remote)
        guard id.kind == .appender else { throw StorageError.invalid("\(id) is not an appender file") }
        let path = try store.localPath(id)
        guard let info = try await fileStatus(path, follow: false) else { throw StorageError.notFound("\(id) does not exist") }
        guard isRegular(info) else { throw StorageError.invalid("\(id) is not a regular file") }
        return (id, path, Int64(info.st_size))
    }

    /// Reads the fixed part of APPEND/MODIFY: `fixed` bytes, of which the first 8 give the
    /// filename length.
    private func readAppenderHead(fixed: Int) async throws -> ByteBuffer {
        var head = try await readExactly(8)
        let nameLength = head.getInteger(at: head.readerIndex, endianness: .big, as: Int64.self)!
        guard nameLength >= Int64(FileID.normalRemoteFilenameLength), nameLength <= Int64(FileID.maxRemoteFilenameLength) else {
            throw StorageError.invalid("\(header.command) appender_filename_len \(nameLength) outside 44...127")
        }
        var rest = try await readExactly(fixed - 8 + Int(nameLength))
        head.writeBuffer(&rest)
        return head
    }

    func appendFile() async throws -> Reply {
        var head = try await readAppenderHead(fixed: 16)
        let request = try AppendRequestHead.decode(&head, bodyLength: header.bodyLength)
        let started = now()
        let (id, path, size) = try await appenderFile(request.remoteFilename)
        if request.length == 0 { return .status(.ok) }
        let checksums = context.appenderChecksums
        let running = checksums.beforeAppend(path, at: size)
        do {
            let crc = try await writeRange(path: path, offset: size, length: request.length, restoreSizeOnFailure: size, counter: "append",
                                           crc: running.map { CRC32(continuing: $0.crc) })
            if let running, let crc, let info = try await fileStatus(path, follow: false) {
                checksums.appended(path, from: running, crc: crc.value, info: info)
            }
        } catch {
            checksums.forget(path)
            throw error
        }
        await log(.append, source: true, id.remoteFilename, [String(size), String(request.length)], timestamp: started)
        return .status(.ok)
    }

    func modifyFile() async throws -> Reply {
        var head = try await readAppenderHead(fixed: 24)
        let request = try ModifyRequestHead.decode(&head, bodyLength: header.bodyLength)
        let started = now()
        let (id, path, size) = try await appenderFile(request.remoteFilename)
        context.appenderChecksums.forget(path)
        guard request.offset <= size else {
            throw StorageError.invalid("MODIFY offset \(request.offset) beyond the size \(size) of \(id)")
        }
        if request.length == 0 { return .status(.ok) }
        try await writeRange(path: path, offset: request.offset, length: request.length, restoreSizeOnFailure: nil, counter: "modify")
        await log(.modify, source: true, id.remoteFilename, [String(request.offset), String(request.length)], timestamp: started)
        return .status(.ok)
    }

    /// Streams the rest of the body into `path` at `offset`, feeding `crc` if given (returned).
    /// Opening, writing, truncating and closing run on the file I/O threads.
    @discardableResult
    private func writeRange(path: String, offset: Int64, length: Int64, restoreSizeOnFailure: Int64?, counter: String, crc: CRC32? = nil) async throws -> CRC32? {
        let fd = try await openForWriting(path)
        let result: CRC32?
        do {
            result = try await receive(into: fd, offset: offset, length: length, crc: crc)
        } catch {
            await context.closeFile(fd, truncatingTo: restoreSizeOnFailure)
            context.count(counter, success: false)
            throw error
        }
        await context.closeFile(fd)
        context.count(counter, success: true, bytes: length)
        return result
    }

    func truncateFile() async throws -> Reply {
        let request = try TruncateRequest.decode(try await readBody())
        let started = now()
        let (id, path, size) = try await appenderFile(request.remoteFilename)
        context.appenderChecksums.forget(path)
        if request.size == size { return .status(.ok) }
        do {
            try await context.fileIO {
                guard truncate(path, off_t(request.size)) == 0 else { throw StorageError.system("truncate \(id)") }
            }
        } catch {
            context.count("truncate", success: false)
            throw error
        }
        await log(.truncate, source: true, id.remoteFilename, [String(size), String(request.size)], timestamp: started)
        context.count("truncate", success: true)
        return .status(.ok)
    }

    func regenerateAppenderName() async throws -> Reply {
        let body = try await readBody()
        guard (FileID.normalRemoteFilenameLength...FileID.maxRemoteFilenameLength).contains(body.readableBytes) else {
            throw StorageError.invalid("REGENERATE_APPENDER_FILENAME body of \(body.readableBytes) bytes outside 44...127")
        }
        let (id, path, size) = try await appenderFile(String(decoding: body.readableBytesView, as: UTF8.self))
        // Known when the file was only appended to since its upload here; else read it.
        let known = try await fileStatus(path, follow: false).flatMap { context.appenderChecksums.take(path, matching: $0) }
        let crc: UInt32
        if let known { crc = known } else { crc = try await context.blocking { try FileChecksum.crc32(path: path) } }
        logger.debug("regenerate \(id): checksum \(known == nil ? "read from the file" : "kept while it was appended")")
        let timestamp = now()
        let (store, group, source) = (self.store, self.group, sourceForNames)
        let newID = try await context.fileIO {
            try NameGenerator.place(
                temp: path, store: store, group: group, pathIndex: id.storePathIndex, directory: (id.highDirectory, id.lowDirectory),
                source: source, timestamp: UInt32(truncatingIfNeeded: timestamp), size: size, crc32: crc, appender: false,
                formattedExtension: String(id.name.suffix(7)))
        }
        context.regeneratedAppenders.renamed(id.remoteFilename, to: newID.remoteFilename)
        await log(.rename, source: true, newID.remoteFilename, [id.remoteFilename], timestamp: timestamp)
        let newMetadataPath = try store.localPath(newID) + "-m"
        if try await context.fileIO({ rename(path + "-m", newMetadataPath) == 0 }) {
            await log(.rename, source: true, newID.remoteFilename + "-m", [id.remoteFilename + "-m"], timestamp: timestamp)
        }
        return .status(.ok, UploadResponse(newID).encoded())
    }
}
