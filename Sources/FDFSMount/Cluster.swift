import FDFSClient
import FDFSProtocol
import NIOCore
import Synchronization

/// What the mount needs to know about a group.
public struct GroupInfo: Sendable, Hashable {
    public var name: String
    public var storePathCount: Int
    public var subdirCount: Int
    public var totalMB: Int64
    public var freeMB: Int64

    public init(name: String, storePathCount: Int, subdirCount: Int, totalMB: Int64 = 0, freeMB: Int64 = 0) {
        self.name = name
        self.storePathCount = storePathCount
        self.subdirCount = subdirCount
        self.totalMB = totalMB
        self.freeMB = freeMB
    }
}

/// Everything the mount core asks of a FastDFS cluster. ``FDFSClusterBackend`` talks to a real
/// cluster through ``FDFSClient``; tests substitute an in-memory cluster.
public protocol ClusterBackend: Sendable {
    func listGroups() async throws(FSError) -> [GroupInfo]
    /// QUERY_FILE_INFO without the CRC computation.
    func fileInfo(_ id: FileID) async throws(FSError) -> FileInfo
    /// QUERY_FILE_INFO (without the CRC computation) asked of one storage.
    func fileInfo(_ id: FileID, on endpoint: StorageEndpoint) async throws(FSError) -> FileInfo
    /// Storages that can serve `id` now (QUERY_FETCH_ALL).
    func replicas(_ id: FileID) async throws(FSError) -> [StorageEndpoint]
    /// More storages to read `id` from once every one in `tried` failed: QUERY_FETCH_ALL asked
    /// again, then the group's other ACTIVE members. Empty when there are none or the tracker
    /// cannot be reached.
    func moreReadTargets(_ id: FileID, excluding tried: [StorageEndpoint]) async -> [StorageEndpoint]
    /// One ranged download from one storage; chunks go to `sink` in order.
    func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, sink: @Sendable (ByteBuffer) -> Void) async throws(FSError)
    /// One ranged download from one storage straight into `buffer` (`buffer.count` bytes from
    /// `offset`); `chunk(offset, bytes)` sees each piece of `chunkSize` bytes as it arrives, in
    /// order. Returns the bytes received. The default goes through
    /// ``read(_:from:offset:length:sink:)`` and copies.
    func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, into buffer: ReceiveBuffer, chunkSize: Int, cancel: DownloadCancel,
              chunk: @escaping @Sendable (_ offset: Int, _ bytes: UnsafeRawBufferPointer) -> Void) async throws(FSError) -> Int
    /// One ranged download from one storage whose bytes go into a pipe rather than memory:
    /// `deliver` runs once, on the download's thread, with the bytes (at most `length`, which is
    /// at most ``SplicePipe/capacity``), then `completion` with their count or the error. A
    /// storage that sends nothing for `stallTimeout` fails it. Both implementations take a
    /// ``ClusterStream`` of just that range whole (``ClusterStream/takeWhole(_:deliver:completion:)``).
    func readSpliced(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: Duration,
                     deliver: @escaping @Sendable (SplicedBody) -> Void, completion: @escaping @Sendable (Result<Int, FSError>) -> Void)
    /// A ranged download that a sequential reader takes in order, piece by piece, each piece
    /// through a pipe (``ClusterStream``): one request for a whole run of READs. Nothing is
    /// sent before the first take. A storage that sends nothing for `stallTimeout` fails it. The
    /// default fetches each piece with ``read(_:from:offset:into:chunkSize:cancel:chunk:)``.
    func openStream(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, stallTimeout: Duration) -> any ClusterStream
    func upload(filePath: String, options: UploadOptions) async throws(FSError) -> FileID
    /// Uploads `length` bytes of an open file from `offset` (the start of a streamed upload).
    func upload(descriptor: Int32, offset: Int64, length: Int64, options: UploadOptions) async throws(FSError) -> FileID
    /// Appends `length` bytes of an open file from `offset` to an appender file.
    func append(_ id: FileID, descriptor: Int32, offset: Int64, length: Int64) async throws(FSError)
    /// Turns an appender file into a normal one under a new name (REGENERATE_APPENDER_FILENAME).
    func regenerate(_ id: FileID) async throws(FSError) -> FileID
    func delete(_ id: FileID) async throws(FSError)
    func getMetadata(_ id: FileID) async throws(FSError) -> FDFSMetadata
    func setMetadata(_ id: FileID, _ metadata: FDFSMetadata, merge: Bool) async throws(FSError)
    func append(_ id: FileID, _ bytes: ByteBuffer) async throws(FSError)
    func modify(_ id: FileID, offset: Int64, _ bytes: ByteBuffer) async throws(FSError)
    func truncate(_ id: FileID, size: Int64) async throws(FSError)
}

extension ClusterBackend {
    public func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, into buffer: ReceiveBuffer, chunkSize: Int, cancel: DownloadCancel,
                     chunk: @escaping @Sendable (_ offset: Int, _ bytes: UnsafeRawBufferPointer) -> Void) async throws(FSError) -> Int {
        let filling = Filling(buffer: buffer, chunkSize: chunkSize, chunk: chunk)
        try await read(id, from: endpoint, offset: offset, length: Int64(buffer.count)) { bytes in filling.add(bytes) }
        return filling.finish()
    }
}

/// Copies the chunks of a sink-based download into a ``ReceiveBuffer``, reporting each whole
/// piece of `chunkSize` bytes (and the last, shorter one at the end).
private final class Filling: Sendable {
    let buffer: ReceiveBuffer
    let chunkSize: Int
    let chunk: @Sendable (Int, UnsafeRawBufferPointer) -> Void
    /// Bytes filled, and bytes reported to `chunk`.
    private let state = Mutex((filled: 0, reported: 0))

    init(buffer: ReceiveBuffer, chunkSize: Int, chunk: @escaping @Sendable (Int, UnsafeRawBufferPointer) -> Void) {
        self.buffer = buffer
        self.chunkSize = chunkSize
        self.chunk = chunk
    }

    func add(_ bytes: ByteBuffer) {
        state.withLock { s in
            let n = min(bytes.readableBytes, buffer.count - s.filled)
            guard n > 0 else { return }
            bytes.withUnsafeReadableBytes { (buffer.base + s.filled).copyMemory(from: $0.baseAddress!, byteCount: n) }
            s.filled += n
            while s.reported + chunkSize <= s.filled {
                chunk(s.reported, UnsafeRawBufferPointer(start: buffer.base + s.reported, count: chunkSize))
                s.reported += chunkSize
            }
        }
    }

    func finish() -> Int {
        state.withLock { s in
            if s.reported < s.filled { chunk(s.reported, UnsafeRawBufferPointer(start: buffer.base + s.reported, count: s.filled - s.reported)) }
            s.reported = s.filled
            return s.filled
        }
    }
}

/// The cluster as reached by ``FDFSClient``.
public struct FDFSClusterBackend: ClusterBackend {
    public let client: FDFSClient

    public init(client: FDFSClient) {
        self.client = client
    }

    public func listGroups() async throws(FSError) -> [GroupInfo] {
        do {
            return try await client.tracker.listGroups().map {
                GroupInfo(name: $0.name, storePathCount: Int($0.storePathCount), subdirCount: Int($0.subdirCountPerPath), totalMB: $0.totalMB, freeMB: $0.freeMB)
            }
        } catch { throw FSError(error, "list groups") }
    }

    public func fileInfo(_ id: FileID) async throws(FSError) -> FileInfo {
        do { return try await client.fileInfo(id, computeCRC32: false) } catch { throw FSError(error, "file info \(id)") }
    }

    public func fileInfo(_ id: FileID, on endpoint: StorageEndpoint) async throws(FSError) -> FileInfo {
        do { return try await client.fileInfo(id, on: endpoint, computeCRC32: false) } catch { throw FSError(error, "file info \(id) on \(endpoint)") }
    }

    public func replicas(_ id: FileID) async throws(FSError) -> [StorageEndpoint] {
        do { return try await client.tracker.queryFetchAll(id) } catch { throw FSError(error, "query fetch all \(id)") }
    }

    public func moreReadTargets(_ id: FileID, excluding tried: [StorageEndpoint]) async -> [StorageEndpoint] {
        await client.tracker.moreReadTargets(id, excluding: tried)
    }

    public func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, sink: @Sendable (ByteBuffer) -> Void) async throws(FSError) {
        do {
            try await client.downloadOnce(id, from: endpoint, offset: offset, length: length) { chunk throws(FDFSClientError) in sink(chunk) }
        } catch { throw FSError(error, "download \(id) [\(offset)+\(length)] from \(endpoint)") }
    }

    /// Received with blocking socket calls on a download thread, straight into `buffer`.
    public func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, into buffer: ReceiveBuffer, chunkSize: Int, cancel: DownloadCancel,
                     chunk: @escaping @Sendable (_ offset: Int, _ bytes: UnsafeRawBufferPointer) -> Void) async throws(FSError) -> Int {
        do {
            return try await client.downloadOnce(id, from: endpoint, offset: offset, into: buffer, chunkSize: chunkSize, cancel: cancel, chunk: chunk)
        } catch { throw FSError(error, "download \(id) [\(offset)+\(buffer.count)] from \(endpoint)") }
    }

    /// One DOWNLOAD_FILE on a pooled blocking connection, spliced piece by piece (``SplicedStream``).
    public func openStream(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, stallTimeout: Duration) -> any ClusterStream {
        SplicedClusterStream(stream: client.splicedStream(id, from: endpoint, offset: offset, length: length, stallTimeout: TimeAmount(stallTimeout)),
                             what: "download \(id) [\(offset)+\(length)] from \(endpoint)")
    }

    /// Spliced from the socket into a pipe on a download thread: the bytes never enter user space.
    public func readSpliced(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: Duration,
                            deliver: @escaping @Sendable (SplicedBody) -> Void, completion: @escaping @Sendable (Result<Int, FSError>) -> Void) {
        openStream(id, from: endpoint, offset: offset, length: Int64(length), stallTimeout: stallTimeout).takeWhole(length, deliver: deliver, completion: completion)
    }

    public func upload(filePath: String, options: UploadOptions) async throws(FSError) -> FileID {
        do { return try await client.upload(filePath: filePath, options: options) } catch { throw FSError(error, "upload") }
    }

    public func upload(descriptor: Int32, offset: Int64, length: Int64, options: UploadOptions) async throws(FSError) -> FileID {
        do { return try await client.upload(descriptor: descriptor, offset: offset, length: length, options: options) } catch { throw FSError(error, "upload") }
    }

    public func append(_ id: FileID, descriptor: Int32, offset: Int64, length: Int64) async throws(FSError) {
        do { try await client.append(id, descriptor: descriptor, offset: offset, length: length) } catch { throw FSError(error, "append \(id)") }
    }

    public func regenerate(_ id: FileID) async throws(FSError) -> FileID {
        do { return try await client.regenerateAppenderName(id) } catch { throw FSError(error, "regenerate \(id)") }
    }

    public func delete(_ id: FileID) async throws(FSError) {
        do { try await client.delete(id) } catch { throw FSError(error, "delete \(id)") }
    }

    public func getMetadata(_ id: FileID) async throws(FSError) -> FDFSMetadata {
        do { return try await client.getMetadata(id, missingIsEmpty: true) } catch { throw FSError(error, "get metadata \(id)") }
    }

    public func setMetadata(_ id: FileID, _ metadata: FDFSMetadata, merge: Bool) async throws(FSError) {
        do { try await client.setMetadata(id, metadata, operation: merge ? .merge : .overwrite) } catch { throw FSError(error, "set metadata \(id)") }
    }

    public func append(_ id: FileID, _ bytes: ByteBuffer) async throws(FSError) {
        do { try await client.append(id, bytes) } catch { throw FSError(error, "append \(id)") }
    }

    public func modify(_ id: FileID, offset: Int64, _ bytes: ByteBuffer) async throws(FSError) {
        do { try await client.modify(id, offset: offset, bytes) } catch { throw FSError(error, "modify \(id)") }
    }

    public func truncate(_ id: FileID, size: Int64) async throws(FSError) {
        do { try await client.truncate(id, size: size) } catch { throw FSError(error, "truncate \(id)") }
    }
}
