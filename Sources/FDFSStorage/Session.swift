import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What a command handler asks the session to do after it ran.
enum Reply {
    /// A response with this status and an optional body.
    case status(FDFSStatus, ByteBuffer? = nil)
    /// The handler already wrote its response (downloads).
    case sent
}

/// Serves one client or peer connection: reads a request, runs its handler, writes the
/// response, and repeats until the peer quits or breaks the protocol.
final class Session: @unchecked Sendable {
    let context: StorageContext
    let channel: any Channel
    let queue: FramePartInbox
    let peer: String
    var logger: Logger
    /// The storage id a peer announced with REPORT_SERVER_ID.
    var sourceID: String?
    /// A replication peer (it has had a sync command served): its connection may idle
    /// between records, kept alive by ACTIVE_TEST, so no idle timeout applies to it.
    var isReplicationPeer = false

    // The frame being served.
    var header = FDFSHeader(bodyLength: 0, command: .activeTest)
    private var pending = ByteBuffer()
    private var frameEnded = true

    init(context: StorageContext, channel: any Channel, queue: FramePartInbox) {
        self.context = context
        self.channel = channel
        self.queue = queue
        self.peer = channel.remoteAddress?.ipAddress ?? "?"
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(peer)"
        self.logger = logger
    }

    var group: String { context.configuration.group }
    var store: StorePaths { context.store }

    /// The address of this end of the connection (used as our IP when nothing better is known).
    var localIP: String { channel.localAddress?.ipAddress ?? "127.0.0.1" }

    /// Our source id for generated names.
    var sourceForNames: GeneratedName.Source {
        GeneratedName.Source(ipv4: context.myIP ?? localIP) ?? .ipv4(127, 0, 0, 1)
    }

    func run() async {
        context.connectionOpened()
        defer {
            context.connectionClosed()
            channel.close(promise: nil)
        }
        while true {
            let part: FDFSFramePart?
            do { part = try await nextPart(timeout: isReplicationPeer ? nil : requestTimeout) } catch {
                logger.debug("connection dropped: \(error)")
                return
            }
            guard let part else { return }
            guard case let .head(head) = part else {
                logger.warning("protocol error: body without header")
                return
            }
            header = head
            frameEnded = false
            pending = ByteBuffer()
            if head.command == .quit { return }
            if await refusedAsNonMember(head.command) { return }
            let reply: Reply
            do {
                reply = try await dispatch()
                if Self.syncCommands.contains(head.command) { isReplicationPeer = true }
            } catch let error as ConnectionLost {
                logger.debug("connection lost during \(head.command): \(error.reason)")
                return
            } catch {
                let failure = StorageError.from(error)
                let expected = (failure.status == .ENOENT && head.command == .queryFileInfo)
                    || ((failure.status == .ENOENT || failure.status == .EEXIST) && Self.syncCommands.contains(head.command))
                if expected {
                    logger.debug("\(head.command): \(failure)")
                } else {
                    logger.warning("\(head.command) failed: \(failure)")
                }
                reply = .status(failure.status)
            }
            guard case let .status(status, body) = reply else {
                if !frameEnded { return }
                continue
            }
            if !frameEnded && status != .EINVAL {
                // Content the handler did not consume: read it away so the answer lands
                // after the request, as the client expects.
                do { try await drain() } catch { return }
            }
            do { try await respond(status, body) } catch { return }
            if status == .EINVAL || !frameEnded { return }
        }
    }

    struct ConnectionLost: Error { var reason: String }

    /// Replication commands, whose ENOENT / EEXIST answers are routine.
    static let syncCommands: Set<FDFSCommand> = [.syncCreateFile, .syncDeleteFile, .syncUpdateFile, .syncCreateLink, .syncAppendFile, .syncModifyFile, .syncTruncateFile, .syncRenameFile]

    private func nextPart(timeout: TimeAmount?) async throws -> FDFSFramePart? {
        let queue = self.queue
        do {
            return try await withCheckedThrowingContinuation { continuation in
                channel.eventLoop.execute { queue.next(continuation, timeout: timeout) }
            }
        } catch let error as FramePartInbox.TimedOut {
            throw StorageError(.EIO, error.description)
        }
    }

    private var bodyTimeout: TimeAmount { .seconds(Int64(context.configuration.networkTimeout)) }

    /// How long a client may take to send a whole request header once the storage waits for
    /// one (idle, half a header, or a byte now and then): `network_timeout`. The wait ends only
    /// when the complete header is in; each later piece of the body has `bodyTimeout`.
    private var requestTimeout: TimeAmount { bodyTimeout }

    /// The next piece of the current frame's body, or nil at its end. It must arrive within
    /// `network_timeout`, and before `deadline` if one is given.
    func nextChunk(before deadline: NIODeadline? = nil) async throws -> ByteBuffer? {
        if pending.readableBytes > 0 {
            let chunk = pending
            pending = ByteBuffer()
            return chunk
        }
        if frameEnded { return nil }
        var timeout = bodyTimeout
        if let deadline { timeout = max(.milliseconds(1), min(timeout, deadline - .now())) }
        let part: FDFSFramePart?
        do { part = try await nextPart(timeout: timeout) } catch {
            throw ConnectionLost(reason: "\(error)")
        }
        switch part {
        case let .body(buffer)?: return buffer
        case .end?: frameEnded = true; return nil
        case .head?: throw ConnectionLost(reason: "header inside a body")
        case nil: throw ConnectionLost(reason: "closed by peer")
        }
    }

    /// Exactly `count` bytes from the body (the fixed part of a streamed request).
    func readExactly(_ count: Int) async throws -> ByteBuffer {
        var out = ByteBuffer()
        while out.readableBytes < count {
            guard var chunk = try await nextChunk() else {
                throw StorageError.invalid("\(header.command) body too short: \(out.readableBytes) < \(count) bytes")
            }
            let need = count - out.readableBytes
            if chunk.readableBytes > need {
                var head = chunk.readSlice(length: need)!
                out.writeBuffer(&head)
                pending = chunk
            } else {
                out.writeBuffer(&chunk)
            }
        }
        return out
    }

    /// The whole body of a buffered command (the decoder has bounded its size).
    func readBody() async throws -> ByteBuffer {
        var out = ByteBuffer()
        while var chunk = try await nextChunk() { out.writeBuffer(&chunk) }
        return out
    }

    /// The whole body of a streamed command that is handled in memory: at most `limit` bytes,
    /// all in within `network_timeout` (a trickling sender is cut off). A longer body is read
    /// away (within the same time) and refused with EINVAL.
    func readBody(limit: Int) async throws -> ByteBuffer {
        let deadline = NIODeadline.now() + bodyTimeout
        guard header.bodyLength <= Int64(limit) else {
            while try await nextChunk(before: deadline) != nil {}
            throw StorageError.invalid("\(header.command) body of \(header.bodyLength) bytes is over the limit of \(limit) bytes (buff_size)")
        }
        var out = ByteBuffer()
        out.reserveCapacity(Int(header.bodyLength))
        while var chunk = try await nextChunk(before: deadline) { out.writeBuffer(&chunk) }
        return out
    }

    /// Reads and discards the rest of the current body.
    func drain() async throws {
        while try await nextChunk() != nil {}
    }

    /// Streams the rest of the body (exactly `length` bytes) to a file descriptor at `offset`,
    /// feeding `crc` if given. Returns the CRC. Chunks are gathered up to ``writeBatch`` bytes
    /// and written on the blocking pool, one batch at a time, in order.
    func receive(into fd: CInt, offset: Int64, length: Int64, crc: CRC32?) async throws -> CRC32? {
        var position = offset
        var crc = crc
        var left = length
        var batch: [ByteBuffer] = []
        var batchBytes = 0
        var batchStart = offset
        while left > 0 {
            guard let chunk = try await nextChunk() else { throw StorageError.invalid("body ended early") }
            left -= Int64(chunk.readableBytes)
            if crc != nil { chunk.withUnsafeReadableBytes { crc!.update($0) } }
            if batch.isEmpty { batchStart = position }
            position += Int64(chunk.readableBytes)
            batch.append(chunk)
            batchBytes += chunk.readableBytes
            if batchBytes >= Self.writeBatch || left <= 0 {
                let chunks = batch
                let start = batchStart
                batch = []
                batchBytes = 0
                try await context.fileIO {
                    var at = start
                    for chunk in chunks {
                        try Self.write(chunk, to: fd, at: at)
                        at += Int64(chunk.readableBytes)
                    }
                }
            }
        }
        return crc
    }

    /// Bytes gathered before one write on the blocking pool (fewer thread hops for small
    /// uploads: a 16 KiB body is one hop).
    static let writeBatch = 256 << 10

    static func write(_ chunk: ByteBuffer, to fd: CInt, at offset: Int64) throws(StorageError) {
        try chunk.withUnsafeReadableBytes { bytes throws(StorageError) in
            var done = 0
            while done < bytes.count {
                let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + Int64(done)))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.system("write")
                }
                done += written
            }
        }
    }

    func respond(_ status: FDFSStatus, _ body: ByteBuffer? = nil) async throws {
        var buffer = channel.allocator.buffer(capacity: FDFSHeader.size + (body?.readableBytes ?? 0))
        FDFSHeader(bodyLength: Int64(body?.readableBytes ?? 0), command: .response, status: status.rawValue).encode(into: &buffer)
        if var body { buffer.writeBuffer(&body) }
        try await channel.writeAndFlush(buffer)
    }

    /// Checks that a group field names our group.
    func checkGroup(_ name: String) throws(StorageError) {
        guard name == group else { throw StorageError.invalid("group '\(name)' is not this storage's group '\(group)'") }
    }

    /// Validates a remote filename of our group.
    func fileID(_ remote: String) throws(StorageError) -> FileID {
        do { return try FileID(group: group, remoteFilename: remote) } catch {
            throw StorageError.invalid(error.message)
        }
    }

    private func dispatch() async throws -> Reply {
        switch header.command {
        case .activeTest:
            guard header.bodyLength == 0 else { throw StorageError.invalid("ACTIVE_TEST with a body") }
            try await drain()
            return .status(.ok)
        case .uploadFile: return try await upload(appender: false)
        case .uploadAppenderFile: return try await upload(appender: true)
        case .uploadSlaveFile: return try await uploadSlave()
        case .deleteFile: return try await deleteFile()
        case .setMetadata: return try await setMetadata()
        case .downloadFile: return try await download()
        case .getMetadata: return try await getMetadata()
        case .queryFileInfo: return try await queryFileInfo()
        case .appendFile: return try await appendFile()
        case .modifyFile: return try await modifyFile()
        case .truncateFile: return try await truncateFile()
        case .regenerateAppenderFilename: return try await regenerateAppenderName()
        case .reportServerID: return try await reportServerID()
        case .syncCreateFile, .syncUpdateFile: return try await syncCopyFile()
        case .syncDeleteFile: return try await syncDeleteFile()
        case .syncCreateLink: return try await syncCreateLink()
        case .syncAppendFile, .syncModifyFile: return try await syncModifyFile()
        case .syncTruncateFile: return try await syncTruncateFile()
        case .syncRenameFile: return try await syncRenameFile()
        default:
            throw StorageError.invalid("unknown command \(header.command)")
        }
    }

    /// Writes a binlog record on the binlog thread and waits for it, logging (not failing the
    /// request) if that is impossible.
    func log(_ operation: BinlogRecord.Operation, source: Bool, _ filename: String, _ arguments: [String] = [], timestamp: Int64) async {
        let record = BinlogRecord(timestamp: Int(timestamp), operation: operation, isSource: source, filename: filename, arguments: arguments)
        do { try await context.appendToBinlog(record) } catch {
            logger.error("binlog write failed for '\(record)': \(error)")
        }
    }
}

extension Session {
    /// ``statFile(_:follow:)`` on the file I/O threads.
    func fileStatus(_ path: String, follow: Bool = true) async throws -> stat? {
        try await context.fileIO { try statFile(path, follow: follow) }
    }

    /// Opens an existing file for writing, on the file I/O threads.
    func openForWriting(_ path: String) async throws -> CInt {
        try await context.fileIO { () throws -> CInt in
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.system("open \(path)") }
            return fd
        }
    }
}

/// Seconds since the epoch.
func now() -> Int64 { Int64(time(nil)) }

/// `stat` of a path, nil if it does not exist (other errors are thrown).
func statFile(_ path: String, follow: Bool = true) throws(StorageError) -> stat? {
    var info = stat()
    let result = follow ? stat(path, &info) : lstat(path, &info)
    if result == 0 { return info }
    if errno == ENOENT || errno == ENOTDIR { return nil }
    throw StorageError.system("stat \(path)")
}

func isRegular(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFREG }
