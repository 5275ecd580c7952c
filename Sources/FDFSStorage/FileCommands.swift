import FDFSProtocol
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// DOWNLOAD_FILE (14), DELETE_FILE (12), SET_METADATA (13), GET_METADATA (15) and
/// QUERY_FILE_INFO (22) (reference §3.4 – §3.9).
extension Session {
    /// Reads a `group[16] + remote filename` body and validates it.
    func fileRequest() async throws -> FileID {
        let request = try FileRequest.decode(try await readBody())
        try checkGroup(request.group)
        return try fileID(request.remoteFilename)
    }

    func download() async throws -> Reply {
        let request = try DownloadRequest.decode(try await readBody())
        try checkGroup(request.file.group)
        let id = try fileID(request.file.remoteFilename)
        let path = try store.localPath(id)
        let opened = try await context.fileIO { () -> (fd: CInt, info: stat, errno: Int32) in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            let code = errno
            var info = stat()
            if fd >= 0 { fstat(fd, &info) }
            return (fd, info, code)
        }
        let (fd, info) = (opened.fd, opened.info)
        guard fd >= 0 else {
            context.count("download", success: false)
            throw StorageError.system("open \(id)", errno: opened.errno)
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        defer { try? handle.close() }
        guard isRegular(info) else { throw StorageError(.EISDIR, "\(id) is not a regular file") }
        let size = Int64(info.st_size)
        guard request.offset <= size else { throw StorageError.invalid("offset \(request.offset) beyond the size \(size) of \(id)") }
        let length = request.length == 0 ? size - request.offset : request.length
        guard length <= size - request.offset else {
            throw StorageError.invalid("\(request.length) bytes from offset \(request.offset) exceed the size \(size) of \(id)")
        }
        try await respondHeader(bodyLength: length)
        if length > 0 {
            let region = FileRegion(fileHandle: handle, readerIndex: Int(request.offset), endIndex: Int(request.offset + length))
            try await channel.writeAndFlush(region)
        }
        context.count("download", success: true, bytes: length)
        return .sent
    }

    func respondHeader(bodyLength: Int64) async throws {
        try await channel.writeAndFlush(FDFSHeader(bodyLength: bodyLength, command: .response).encoded())
    }

    func deleteFile() async throws -> Reply {
        let id = try await fileRequest()
        let path = try store.localPath(id)
        context.appenderChecksums.forget(path)
        do {
            try await context.fileIO {
                guard unlink(path) == 0 else { throw StorageError.system("delete \(id)") }
            }
        } catch {
            context.count("delete", success: false)
            throw error
        }
        let time = now()
        await log(.delete, source: true, id.remoteFilename, timestamp: time)
        if try await context.fileIO({ unlink(path + "-m") == 0 }) {
            await log(.delete, source: true, id.remoteFilename + "-m", timestamp: time)
        }
        context.count("delete", success: true)
        return .status(.ok)
    }

    /// SET_METADATA. The body, and the metadata file it leaves, are bounded by `buff_size`
    /// (EINVAL beyond); the file work runs on the blocking pool.
    func setMetadata() async throws -> Reply {
        let limit = context.configuration.buffSize
        let body = try await readBody(limit: limit)
        // Decoding 10 000s of records is CPU work: off the sessions' threads, with the I/O.
        let request = try await context.blocking { try SetMetadataRequest.decode(body) }
        try checkGroup(request.file.group)
        let id = try fileID(request.file.remoteFilename)
        let path = try store.localPath(id)
        do {
            let change = try await context.blocking { () throws(StorageError) -> BinlogRecord.Operation? in
                guard try statFile(path) != nil else { throw StorageError.notFound("\(id) does not exist") }
                return try MetadataStore.apply(request.operation, MetadataStore.truncated(request.metadata), dataPath: path, limit: limit)
            }
            if let change { await log(change, source: true, id.remoteFilename + "-m", timestamp: now()) }
        } catch {
            context.count("set_meta", success: false)
            throw error
        }
        context.count("set_meta", success: true)
        return .status(.ok)
    }

    func getMetadata() async throws -> Reply {
        let id = try await fileRequest()
        let path = try store.localPath(id)
        let found = try await context.fileIO { () throws -> (info: stat, metadata: [UInt8]?)? in
            guard let info = try statFile(path) else { return nil }
            return (info, isRegular(info) ? MetadataStore.read(path + "-m") : nil)
        }
        guard let (info, metadata) = found else {
            context.count("get_meta", success: false)
            throw StorageError.notFound("\(id) does not exist")
        }
        guard isRegular(info) else { throw StorageError(.EISDIR, "\(id) is not a regular file") }
        guard let bytes = metadata else {
            context.count("get_meta", success: false)
            throw StorageError.notFound("\(id) has no metadata")
        }
        context.count("get_meta", success: true)
        return .status(.ok, ByteBuffer(bytes: bytes))
    }

    func queryFileInfo() async throws -> Reply {
        let flags = FileInfoFlags(rawValue: header.status)
        let id = try await fileRequest()
        let path = try store.localPath(id)
        let infos = try await context.fileIO { () throws -> (stat, stat)? in
            guard let linkInfo = try statFile(path, follow: false), let info = try statFile(path) else { return nil }
            return (linkInfo, info)
        }
        guard let (linkInfo, info) = infos else {
            throw StorageError.notFound("\(id) does not exist")
        }
        guard isRegular(info) else { throw StorageError(.EISDIR, "\(id) is not a regular file") }
        var crc = id.generated.crc32
        if id.kind == .appender || id.kind == .slave {
            crc = flags.contains(.noCRC32) ? 0 : try await context.blocking { try FileChecksum.crc32(path: path) }
        }
        let sourceIP: String
        switch id.generated.source {
        case .ipv4: sourceIP = id.generated.source.description
        case .storageID: sourceIP = ""
        }
        let reply = FileInfo(size: Int64(info.st_size), createTimestamp: Int64(linkInfo.st_mtim.tv_sec), crc32: crc, sourceIP: sourceIP)
        return .status(.ok, reply.encoded(profile: .v6_16))
    }
}

/// CRC32 of whole files.
enum FileChecksum {
    static func crc32(path: String) throws(StorageError) -> UInt32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StorageError.system("open \(path)") }
        defer { close(fd) }
        var crc = CRC32()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw StorageError.system("read \(path)")
            }
            if got == 0 { break }
            buffer.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
        }
        return crc.value
    }
}
