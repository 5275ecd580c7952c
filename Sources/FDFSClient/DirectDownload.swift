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
    /// avoid it: on a download thread, the kernel moves the body from the socket into a pipe
    /// with splice(2), then `deliver(.pipe(fd, count))` passes the bytes on from the pipe's read
    /// end (the mount replies to a FUSE READ with them). When the pipe fills up first (it holds
    /// one packet piece per slot; see ``SplicePipe``), its bytes and the rest are received into
    /// memory and delivered as `.memory`. `length` is at most ``SplicePipe/capacity``; the
    /// storage may send fewer (the file ends first), and `deliver` runs once in any case, with
    /// what arrived. Nothing is checksummed. `completion` then runs on that thread with the byte
    /// count, or with the error (as ``downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``);
    /// once `deliver` has run the download has succeeded, whatever `deliver` did with the bytes.
    /// `stallTimeout`, when shorter than the network timeout, bounds each wait for the storage
    /// instead (a stalled storage fails the download with ``FDFSClientError/Code/timeout`` that
    /// soon). No task is involved: a caller on a thread of its own (the mount's libfuse thread)
    /// hands the exchange to a download thread and is done.
    public func downloadSpliced(
        _ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: TimeAmount? = nil,
        deliver: @escaping @Sendable (SplicedBody) -> Void, completion: @escaping @Sendable (Result<Int, FDFSClientError>) -> Void
    ) {
        guard length >= 0, length <= SplicePipe.capacity else {
            completion(.failure(FDFSClientError(.invalidArgument, operation: Self.downloadOperation, endpoint: endpoint.description,
                                                message: "a spliced download takes at most \(SplicePipe.capacity) bytes, not \(length)")))
            return
        }
        let request = DownloadRequest(offset: offset, length: Int64(length), file: FileRequest(id)).encoded()
        let networkTimeout = configuration.networkTimeout
        let wait = stallTimeout.map { min($0, networkTimeout) }
        onDownloadThread(endpoint, cancel: nil, { connection throws(FDFSClientError) -> Int in
            if let wait { connection.setReceiveTimeout(wait) }
            defer { if wait != nil { connection.setReceiveTimeout(networkTimeout) } }
            return try Self.splice(request, on: connection, atMost: length, deliver: deliver)
        }, completion: completion)
    }

    /// ``downloadSpliced(_:from:offset:length:stallTimeout:deliver:completion:)``, awaited.
    public func downloadSpliced(
        _ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: TimeAmount? = nil,
        deliver: @escaping @Sendable (SplicedBody) -> Void
    ) async throws(FDFSClientError) -> Int {
        try await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int, FDFSClientError>, Never>) in
            downloadSpliced(id, from: endpoint, offset: offset, length: length, stallTimeout: stallTimeout, deliver: deliver) {
                continuation.resume(returning: $0)
            }
        }.get()
    }

    /// The blocking part of a spliced download, on one connection.
    private static func splice(
        _ request: ByteBuffer, on connection: BlockingConnection, atMost length: Int, deliver: (SplicedBody) -> Void
    ) throws(FDFSClientError) -> Int {
        // The pipe first: a pipe the kernel refuses (too many pipe pages for this user) then
        // costs no transfer.
        let pipe = try SplicePipes.take()
        defer { SplicePipes.give(pipe) }
        let total = try requestBody(request, on: connection, atMost: length)
        try spliceBody(total, from: connection, through: pipe, deliver: deliver)
        return total
    }

    /// Moves the next `count` bytes of a body (at most ``SplicePipe/capacity``) from the
    /// socket into `pipe` and delivers them from there; when the pipe fills up first, its
    /// bytes and the rest are received into memory and delivered as `.memory`.
    static func spliceBody(_ count: Int, from connection: BlockingConnection, through pipe: SplicePipe, deliver: (SplicedBody) -> Void) throws(FDFSClientError) {
        let inPipe = try pipe.fill(from: connection, count: count, operation: downloadOperation)
        if inPipe == count {
            deliver(.pipe(fd: pipe.readEnd, count: count))
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
        defer { memory.deallocate() }
        try pipe.drain(into: memory, count: inPipe)
        try connection.receive(into: memory + inPipe, count: count - inPipe, operation: downloadOperation)
        deliver(.memory(UnsafeRawBufferPointer(start: memory, count: count)))
    }

    static let downloadOperation = "DOWNLOAD_FILE"

    /// Runs `body` on a download thread with a connection to `endpoint` from the blocking
    /// pool, which `cancel` can shut down from elsewhere; then `completion` on that thread
    /// with what `body` returned or threw.
    private func onDownloadThread<T>(
        _ endpoint: StorageEndpoint, cancel: DownloadCancel?, _ body: @escaping @Sendable (BlockingConnection) throws(FDFSClientError) -> T,
        completion: @escaping @Sendable (Result<T, FDFSClientError>) -> Void
    ) {
        let pool = blockingPool
        DownloadThreads.pool.submit { state in
            guard case .active = state else {
                completion(.failure(FDFSClientError(.localIO, operation: Self.downloadOperation, endpoint: endpoint.description, message: "download threads stopped")))
                return
            }
            completion(Result { () throws(FDFSClientError) -> T in
                try pool.withConnection(to: endpoint) { (connection: BlockingConnection) throws(FDFSClientError) -> T in
                    guard cancel?.attach(connection) ?? true else {
                        throw FDFSClientError(.connectionClosed, operation: Self.downloadOperation, endpoint: connection.endpoint, message: "cancelled")
                    }
                    defer { cancel?.detach() }
                    return try body(connection)
                }
            })
        }
    }

    /// ``onDownloadThread(_:cancel:_:completion:)``, awaited.
    private func onDownloadThread<T: Sendable>(
        _ endpoint: StorageEndpoint, cancel: DownloadCancel?, _ body: @escaping @Sendable (BlockingConnection) throws(FDFSClientError) -> T
    ) async throws(FDFSClientError) -> T {
        try await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, FDFSClientError>, Never>) in
            onDownloadThread(endpoint, cancel: cancel, body) { continuation.resume(returning: $0) }
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
