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
        return try await onDownloadThread(endpoint, cancel: cancel) { connection throws(FDFSClientError) -> Int in
            let total = try Self.requestBody(request, on: connection, atMost: buffer.count)
            var position = 0
            while position < total {
                let size = min(chunkSize - position % chunkSize, total - position)
                try connection.receive(into: buffer.base + position, count: size, operation: Self.downloadOperation)
                chunk(position, UnsafeRawBufferPointer(start: buffer.base + position, count: size))
                position += size
            }
            return total
        }
    }

    /// One DOWNLOAD_FILE exchange whose body does not enter user space where the kernel can
    /// avoid it: a ``SplicedStream`` taken whole in one piece, on a download thread. The kernel
    /// moves the body from the socket into a pipe with splice(2), then `deliver(.pipe(fd, count))`
    /// passes the bytes on from the pipe's read end (the mount replies to a FUSE READ with them).
    /// When the pipe fills up first (it holds one packet piece per slot; see ``SplicePipe``), its
    /// bytes and the rest are received into memory and delivered as `.memory`. `length` is 1 to
    /// ``SplicePipe/capacity``; `deliver` runs once, with what the storage sent. Nothing is
    /// checksummed. Returns the byte count; errors as
    /// ``downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``. `stallTimeout`, when shorter
    /// than the network timeout, bounds each wait for the storage instead (a stalled storage
    /// fails the download with ``FDFSClientError/Code/timeout`` that soon).
    public func downloadSpliced(
        _ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: TimeAmount? = nil,
        deliver: @escaping @Sendable (SplicedBody) -> Void
    ) async throws(FDFSClientError) -> Int {
        guard length > 0, length <= SplicePipe.capacity else {
            throw FDFSClientError(.invalidArgument, operation: Self.downloadOperation, endpoint: endpoint.description,
                                  message: "a spliced download takes 1 to \(SplicePipe.capacity) bytes, not \(length)")
        }
        let stream = splicedStream(id, from: endpoint, offset: offset, length: Int64(length), stallTimeout: stallTimeout ?? configuration.networkTimeout)
        return try await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int, FDFSClientError>, Never>) in
            Self.onDownloadThread { running in
                continuation.resume(returning: Result { () throws(FDFSClientError) -> Int in
                    guard running else { throw Self.threadsStopped(endpoint) }
                    return try stream.take(count: length, deliver: deliver)
                })
            }
        }.get()
    }

    static let downloadOperation = "DOWNLOAD_FILE"

    static func threadsStopped(_ endpoint: StorageEndpoint) -> FDFSClientError {
        FDFSClientError(.localIO, operation: downloadOperation, endpoint: endpoint.description, message: "download threads stopped")
    }

    /// Runs `body` on a download thread with a connection to `endpoint` from the blocking
    /// pool, which `cancel` can shut down from elsewhere, and returns what it returned.
    private func onDownloadThread<T: Sendable>(
        _ endpoint: StorageEndpoint, cancel: DownloadCancel?, _ body: @escaping @Sendable (BlockingConnection) throws(FDFSClientError) -> T
    ) async throws(FDFSClientError) -> T {
        let pool = blockingPool
        return try await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, FDFSClientError>, Never>) in
            Self.onDownloadThread { running in
                continuation.resume(returning: Result { () throws(FDFSClientError) -> T in
                    guard running else { throw Self.threadsStopped(endpoint) }
                    return try pool.withConnection(to: endpoint) { (connection: BlockingConnection) throws(FDFSClientError) -> T in
                        guard cancel?.attach(connection) ?? true else {
                            throw FDFSClientError(.connectionClosed, operation: Self.downloadOperation, endpoint: connection.endpoint, message: "cancelled")
                        }
                        defer { cancel?.detach() }
                        return try body(connection)
                    }
                })
            }
        }.get()
    }

    /// Sends a DOWNLOAD_FILE request and reads the answer's header: the body's length, which
    /// may not exceed the `atMost` bytes asked for.
    static func requestBody(_ request: ByteBuffer, on connection: BlockingConnection, atMost asked: Int) throws(FDFSClientError) -> Int {
        var head = FDFSHeader(bodyLength: Int64(request.readableBytes), command: .downloadFile).encoded()
        var body = request
        head.writeBuffer(&body)
        try connection.send(head, operation: downloadOperation)
        let answer = try connection.readHead(operation: downloadOperation)
        guard answer.bodyLength <= Int64(asked) else {
            throw FDFSClientError(.protocolViolation, operation: downloadOperation, endpoint: connection.endpoint,
                                  message: "server announced \(answer.bodyLength) bytes, \(asked) asked")
        }
        return Int(answer.bodyLength)
    }
}
