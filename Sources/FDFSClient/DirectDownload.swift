import FDFSProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Memory a download receives into: `count` bytes at `base`, owned by the caller, who keeps
/// it alive and leaves it alone until the download has returned.
/// `@unchecked Sendable`: raw memory lent to a download thread for the length of one call.
public struct ReceiveBuffer: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let count: Int

    public init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }
}

/// Stops a download into memory from another task (a hedged attempt whose race was won by
/// another storage): the connection is shut down, so a receive blocked on it returns at once
/// and the download fails with `connectionClosed`. Cancelling before the download starts
/// makes it fail at its start.
public final class DownloadCancel: Sendable {
    private struct State {
        var connection: BlockingConnection?
        var cancelled = false
    }

    private let state = Mutex(State())

    public init() {}

    public func cancel() {
        state.withLock { s in
            s.cancelled = true
            s.connection?.abort()
        }
    }

    /// Registers the connection in use; false when the download was cancelled already.
    func attach(_ connection: BlockingConnection) -> Bool {
        state.withLock { s in
            guard !s.cancelled else { return false }
            s.connection = connection
            return true
        }
    }

    /// Called before the connection goes back to its pool (or is closed).
    func detach() { state.withLock { $0.connection = nil } }
}

/// The threads on which downloads into memory block: one download per thread at a time, so
/// this bounds how many run at once (the mount's read-ahead keeps about 8 in flight; hedged
/// attempts and other open files add to that). Started on first use, for the process's life.
enum DownloadThreads {
    static let count = 16
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: count)
        pool.start()
        return pool
    }()
}

extension FDFSClient {
    /// One DOWNLOAD_FILE exchange with one storage whose body is received straight into
    /// `buffer`: `buffer.count` bytes of `id` from `offset`. The exchange runs with blocking
    /// socket calls on a thread of its own (``DownloadThreads``), so the bytes land once in
    /// user space, in the caller's memory, with no event-loop hop per received piece; after
    /// each piece of `chunkSize` bytes (the last may be shorter; pieces start at multiples of
    /// `chunkSize`) `chunk(offset, bytes)` runs on that thread, while the bytes are still in
    /// the CPU cache. Returns the number of bytes the storage sent (less than `buffer.count`
    /// when the file ends first). Errors as ``downloadOnce(_:from:offset:length:into:)``;
    /// `cancel` can end it from elsewhere.
    public func downloadOnce(
        _ id: FileID, from endpoint: StorageEndpoint, offset: Int64, into buffer: ReceiveBuffer, chunkSize: Int,
        cancel: DownloadCancel? = nil, chunk: @escaping @Sendable (_ offset: Int, _ bytes: UnsafeRawBufferPointer) -> Void
    ) async throws(FDFSClientError) -> Int {
        guard buffer.count > 0, chunkSize > 0 else { return 0 }
        let request = DownloadRequest(offset: offset, length: Int64(buffer.count), file: FileRequest(id)).encoded()
        let pool = blockingPool
        let result: Result<Int, FDFSClientError>
        do {
            result = try await DownloadThreads.pool.runIfActive {
                Result { () throws(FDFSClientError) -> Int in
                    try pool.withConnection(to: endpoint) { (connection: BlockingConnection) throws(FDFSClientError) -> Int in
                        guard cancel?.attach(connection) ?? true else {
                            throw FDFSClientError(.connectionClosed, operation: "DOWNLOAD_FILE", endpoint: connection.endpoint, message: "cancelled")
                        }
                        defer { cancel?.detach() }
                        return try Self.receive(request, on: connection, into: buffer, chunkSize: chunkSize, chunk: chunk)
                    }
                }
            }
        } catch {
            throw FDFSClientError(.localIO, operation: "DOWNLOAD_FILE", endpoint: endpoint.description, message: "download thread: \(error)")
        }
        return try result.get()
    }

    /// The blocking part of ``downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``.
    private static func receive(
        _ request: ByteBuffer, on connection: BlockingConnection, into buffer: ReceiveBuffer, chunkSize: Int,
        chunk: (Int, UnsafeRawBufferPointer) -> Void
    ) throws(FDFSClientError) -> Int {
        let operation = "DOWNLOAD_FILE"
        var head = FDFSHeader(bodyLength: Int64(request.readableBytes), command: .downloadFile).encoded()
        var body = request
        head.writeBuffer(&body)
        try connection.send(head, operation: operation)
        let answer = try connection.readHead(operation: operation)
        guard answer.bodyLength <= Int64(buffer.count) else {
            throw FDFSClientError(.protocolViolation, operation: operation, endpoint: connection.endpoint, message: "server announced \(answer.bodyLength) bytes, \(buffer.count) asked")
        }
        let total = Int(answer.bodyLength)
        var position = 0
        while position < total {
            let size = min(chunkSize - position % chunkSize, total - position)
            try connection.receive(into: buffer.base + position, count: size, operation: operation)
            chunk(position, UnsafeRawBufferPointer(start: buffer.base + position, count: size))
            position += size
        }
        return total
    }
}
