import FDFSProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// An async FastDFS client: tracker queries, uploads, downloads and file operations against a
/// real FastDFS cluster (or ours), with connection pooling, tracker failover and replica
/// failover for downloads.
public final class FDFSClient: Sendable {
    public let configuration: ClientConfiguration
    public let pool: ConnectionPool
    /// Connections for downloads received straight into memory (``downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``).
    let blockingPool: BlockingConnectionPool
    /// Tracker queries.
    public let tracker: TrackerClient
    let logger: Logger
    /// Store targets reused for ``ClientConfiguration/storeTargetLifetime``, by group ("" = any).
    let storeTargets = Mutex<[String: (target: StoreTarget, expires: NIODeadline)]>([:])

    public init(
        configuration: ClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "fdfs.client")
    ) {
        self.configuration = configuration
        self.pool = ConnectionPool(configuration: configuration, group: group)
        self.blockingPool = BlockingConnectionPool(configuration: configuration)
        self.tracker = TrackerClient(pool: pool, trackers: configuration.trackers)
        self.logger = logger
    }

    /// Closes pooled connections politely (QUIT).
    public func shutdown() async {
        await pool.shutdown()
        blockingPool.shutdown()
    }

    /// Runs `body` on a pooled connection to a storage.
    public func withStorage<T: Sendable>(
        _ endpoint: StorageEndpoint, _ body: (FDFSConnection) async throws(FDFSClientError) -> T
    ) async throws(FDFSClientError) -> T {
        try await pool.withConnection(to: endpoint, body)
    }

    static func fileID(_ text: String, operation: String) throws(FDFSClientError) -> FileID {
        do {
            return try FileID(text)
        } catch {
            throw FDFSClientError(.invalidArgument, operation: operation, message: error.description)
        }
    }

    static func decode<T>(
        _ operation: String, _ endpoint: StorageEndpoint, _ body: ByteBuffer,
        _ decoder: (ByteBuffer) throws(FDFSProtocolError) -> T
    ) throws(FDFSClientError) -> T {
        do {
            return try decoder(body)
        } catch {
            throw FDFSClientError(.protocolViolation, operation: operation, endpoint: endpoint.description, message: error.description)
        }
    }
}

// MARK: - Uploads

/// Options of an upload.
public struct UploadOptions: Sendable {
    /// Group to upload to; nil lets the tracker choose.
    public var group: String?
    /// Store path index to request; nil takes the tracker's suggestion.
    public var storePathIndex: Int8?
    /// Extension (without the dot) recorded in the generated name.
    public var fileExtension: String
    /// Upload an appender file (it can later be appended to, modified and truncated).
    public var appender: Bool
    /// Metadata set right after the upload (with `O`); if that fails the file is deleted.
    public var metadata: FDFSMetadata
    /// Called with the number of bytes sent so far (file uploads send in 8 MiB steps when set).
    public var progress: (@Sendable (Int64) -> Void)?

    public init(group: String? = nil, storePathIndex: Int8? = nil, fileExtension: String = "", appender: Bool = false, metadata: FDFSMetadata = FDFSMetadata(), progress: (@Sendable (Int64) -> Void)? = nil) {
        self.progress = progress
        self.group = group
        self.storePathIndex = storePathIndex
        self.fileExtension = fileExtension
        self.appender = appender
        self.metadata = metadata
    }
}

extension FDFSClient {
    /// Uploads bytes held in memory.
    public func upload(_ bytes: ByteBuffer, options: UploadOptions = UploadOptions()) async throws(FDFSClientError) -> FileID {
        try await upload(length: Int64(bytes.readableBytes), options: options) { connection, operation throws(FDFSClientError) in
            try await connection.write(bytes, operation: operation)
        }
    }

    /// Uploads bytes held in memory.
    public func upload(_ bytes: [UInt8], options: UploadOptions = UploadOptions()) async throws(FDFSClientError) -> FileID {
        try await upload(ByteBuffer(bytes: bytes), options: options)
    }

    /// Uploads a local file, streamed with `sendfile` (never loaded into memory). Without an
    /// explicit extension, the file's own (up to 6 characters) is used.
    public func upload(filePath: String, options: UploadOptions = UploadOptions()) async throws(FDFSClientError) -> FileID {
        let file = try LocalFile(openForReading: filePath, operation: "upload")
        defer { file.close() }
        var options = options
        if options.fileExtension.isEmpty { options.fileExtension = LocalFile.extensionOf(filePath) }
        let progress = options.progress
        return try await upload(length: file.size, options: options) { connection, operation throws(FDFSClientError) in
            try await Self.sendFile(file, over: connection, operation: operation, progress: progress)
        }
    }

    /// Uploads `length` bytes of an open local file starting at `offset`, with `sendfile`
    /// (the descriptor stays open; the caller owns it).
    public func upload(descriptor: CInt, offset: Int64, length: Int64, options: UploadOptions = UploadOptions()) async throws(FDFSClientError) -> FileID {
        try await upload(length: length, options: options) { connection, operation throws(FDFSClientError) in
            try await connection.writeFile(descriptor: descriptor, offset: offset, length: length, operation: operation)
        }
    }

    /// Uploads `length` bytes produced by an async sequence. If the sequence ends early or
    /// produces more, the upload is abandoned with ``FDFSClientError/Code/invalidArgument``.
    public func upload<S: AsyncSequence & Sendable>(
        stream: S, length: Int64, options: UploadOptions = UploadOptions()
    ) async throws(FDFSClientError) -> FileID where S.Element == ByteBuffer {
        try await upload(length: length, options: options) { connection, operation throws(FDFSClientError) in
            try await Self.pump(stream, length: length, to: connection, operation: operation)
        }
    }

    static func sendFile(_ file: LocalFile, over connection: FDFSConnection, operation: String, progress: (@Sendable (Int64) -> Void)?) async throws(FDFSClientError) {
        guard let progress else {
            try await connection.writeFile(descriptor: file.descriptor, offset: 0, length: file.size, operation: operation)
            return
        }
        var sent: Int64 = 0
        while sent < file.size {
            let step = min(8 << 20, file.size - sent)
            try await connection.writeFile(descriptor: file.descriptor, offset: sent, length: step, operation: operation)
            sent += step
            progress(sent)
        }
    }

    static func pump<S: AsyncSequence>(
        _ stream: S, length: Int64, to connection: FDFSConnection, operation: String
    ) async throws(FDFSClientError) where S.Element == ByteBuffer {
        var sent: Int64 = 0
        do {
            for try await chunk in stream {
                sent += Int64(chunk.readableBytes)
                guard sent <= length else { break }
                try await connection.write(chunk, operation: operation)
            }
        } catch let error as FDFSClientError {
            throw error
        } catch {
            throw FDFSClientError(.localIO, operation: operation, message: "source stream failed: \(error)")
        }
        guard sent == length else {
            throw FDFSClientError(.invalidArgument, operation: operation, message: "source produced \(sent) bytes, \(length) announced")
        }
    }

    /// The upload core: query the tracker, send the head, let `content` send the bytes, read
    /// the generated ID, then set metadata if asked.
    func upload(
        length: Int64, options: UploadOptions,
        content: (FDFSConnection, String) async throws(FDFSClientError) -> Void
    ) async throws(FDFSClientError) -> FileID {
        let operation = options.appender ? "UPLOAD_APPENDER_FILE" : "UPLOAD_FILE"
        do {
            try FileID.validateNamePart(options.fileExtension, what: "extension", maxLength: 6, allowEmpty: true)
        } catch {
            throw FDFSClientError(.invalidArgument, operation: operation, message: error.description)
        }
        let target = try await storeTarget(group: options.group)
        let head = UploadRequestHead(
            storePathIndex: options.storePathIndex ?? Int8(bitPattern: target.storePathIndex),
            fileSize: length, fileExtension: options.fileExtension)
        let command: FDFSCommand = options.appender ? .uploadAppenderFile : .uploadFile
        let endpoint = target.storage
        do {
            return try await upload(to: endpoint, command: command, head: head, length: length, options: options, operation: operation, content: content)
        } catch {
            storeTargets.withLock { _ = $0.removeValue(forKey: options.group ?? "") }
            throw error
        }
    }

    /// Where to upload: the tracker's answer, or a recent one (``ClientConfiguration/storeTargetLifetime``).
    func storeTarget(group: String?) async throws(FDFSClientError) -> StoreTarget {
        let lifetime = configuration.storeTargetLifetime
        guard lifetime > .zero else { return try await tracker.queryStore(group: group) }
        let key = group ?? "", now = NIODeadline.now()
        if let cached = storeTargets.withLock({ $0[key] }), cached.expires > now { return cached.target }
        let target = try await tracker.queryStore(group: group)
        storeTargets.withLock { $0[key] = (target, now + lifetime) }
        return target
    }

    func upload(
        to endpoint: StorageEndpoint, command: FDFSCommand, head: UploadRequestHead, length: Int64, options: UploadOptions, operation: String,
        content: (FDFSConnection, String) async throws(FDFSClientError) -> Void
    ) async throws(FDFSClientError) -> FileID {
        try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await connection.send(FDFSHeader(bodyLength: Int64(UploadRequestHead.size) + length, command: command), body: head.encoded())
            try await content(connection, operation)
            let reply = try await connection.readHead(operation: operation)
            let body = try await connection.readBody(reply, operation: operation, maxResponse: 16 + FileID.maxRemoteFilenameLength)
            let id = try Self.decode(operation, endpoint, body) { (b: ByteBuffer) throws(FDFSProtocolError) in try UploadResponse.decode(b).fileID() }
            if !options.metadata.isEmpty {
                do throws(FDFSClientError) {
                    try await Self.setMetadata(on: connection, id: id, metadata: options.metadata, operation: .overwrite, endpoint: endpoint)
                } catch {
                    _ = try? await connection.call(.deleteFile, body: FileRequest(id).encoded(), operation: "DELETE_FILE")
                    throw error
                }
            }
            return id
        }
    }

    /// Uploads a slave file of `master` from memory (UPLOAD_SLAVE_FILE).
    public func uploadSlave(master: FileID, prefix: String, fileExtension: String, bytes: ByteBuffer) async throws(FDFSClientError) -> FileID {
        try await uploadSlave(master: master, prefix: prefix, fileExtension: fileExtension, length: Int64(bytes.readableBytes)) { connection, operation throws(FDFSClientError) in
            try await connection.write(bytes, operation: operation)
        }
    }

    /// Uploads a slave file of `master` from a local file.
    public func uploadSlave(master: FileID, prefix: String, fileExtension: String, filePath: String) async throws(FDFSClientError) -> FileID {
        let file = try LocalFile(openForReading: filePath, operation: "UPLOAD_SLAVE_FILE")
        defer { file.close() }
        return try await uploadSlave(master: master, prefix: prefix, fileExtension: fileExtension, length: file.size) { connection, operation throws(FDFSClientError) in
            try await connection.writeFile(descriptor: file.descriptor, offset: 0, length: file.size, operation: operation)
        }
    }

    func uploadSlave(
        master: FileID, prefix: String, fileExtension: String, length: Int64,
        content: (FDFSConnection, String) async throws(FDFSClientError) -> Void
    ) async throws(FDFSClientError) -> FileID {
        let operation = "UPLOAD_SLAVE_FILE"
        do {
            _ = try master.slave(prefix: prefix, ext: fileExtension)
        } catch {
            throw FDFSClientError(.invalidArgument, operation: operation, message: error.description)
        }
        let head = UploadSlaveRequestHead(masterRemoteFilename: master.remoteFilename, fileSize: length, prefix: prefix, fileExtension: fileExtension)
        let endpoint = try await tracker.queryUpdate(master)
        return try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await connection.send(FDFSHeader(bodyLength: Int64(head.size) + length, command: .uploadSlaveFile), body: head.encoded())
            try await content(connection, operation)
            let reply = try await connection.readHead(operation: operation)
            let body = try await connection.readBody(reply, operation: operation, maxResponse: 16 + FileID.maxRemoteFilenameLength)
            return try Self.decode(operation, endpoint, body) { (b: ByteBuffer) throws(FDFSProtocolError) in try UploadResponse.decode(b).fileID() }
        }
    }
}
