import FDFSProtocol
import NIOCore
import Synchronization

/// One DOWNLOAD_FILE whose body a reader takes in order, a piece at a time, each piece spliced
/// from the socket into a pipe (``FDFSClient/downloadSpliced(_:from:offset:length:stallTimeout:deliver:)``
/// is one taken whole): a sequential reader's whole range costs the storage one request, which
/// it serves as it serves a direct download (one open, one `sendfile` kept going by the
/// socket), and costs the reader no request per piece.
///
/// The request goes out with the first ``take(skipping:count:deliver:)``. The calls block (up
/// to the stall timeout): make them on a download thread (``FDFSClient/onDownloadThread(_:)``),
/// one at a time. The connection goes back to the pool once the whole body is taken; an error,
/// or ``close()`` before the end, closes it.
public final class SplicedStream: Sendable {
    /// The storage the bytes come from.
    public let endpoint: StorageEndpoint
    private let request: ByteBuffer
    private let asked: Int64
    private let pool: BlockingConnectionPool
    private let stallTimeout: TimeAmount
    private let networkTimeout: TimeAmount

    private struct State {
        var connection: BlockingConnection?
        var opened = false
        /// Body bytes not taken yet (known once the answer's header is in).
        var remaining: Int64 = 0
        /// A take is running: ``close()`` then only shuts the socket down.
        var busy = false
        var closed = false
    }

    private let state = Mutex(State())

    init(request: DownloadRequest, endpoint: StorageEndpoint, pool: BlockingConnectionPool, stallTimeout: TimeAmount, networkTimeout: TimeAmount) {
        self.request = request.encoded()
        self.asked = request.length
        self.endpoint = endpoint
        self.pool = pool
        self.stallTimeout = min(stallTimeout, networkTimeout)
        self.networkTimeout = networkTimeout
    }

    deinit { state.withLock { $0.connection }?.close() }

    /// Body bytes not taken yet (the length asked for before the first take).
    public var remaining: Int64 { state.withLock { $0.opened ? $0.remaining : asked } }

    /// Drops the next `skipping` bytes, then moves the next `count` (at most
    /// ``SplicePipe/capacity``; fewer where the body ends) into a pipe and delivers them, as
    /// `.memory` when the pipe fills up first. `deliver` runs once per successful take (with
    /// nothing at the end of the body). Returns the count delivered. Blocks; a storage that
    /// sends nothing for the stall timeout fails it with ``FDFSClientError/Code/timeout``. After
    /// an error the stream is closed.
    public func take(skipping: Int64 = 0, count: Int, deliver: (SplicedBody) -> Void) throws(FDFSClientError) -> Int {
        guard count >= 0, count <= SplicePipe.capacity, skipping >= 0 else {
            throw FDFSClientError(.invalidArgument, operation: FDFSClient.downloadOperation, endpoint: endpoint.description,
                                  message: "a spliced piece takes at most \(SplicePipe.capacity) bytes, not \(count)")
        }
        guard state.withLock({ !$0.opened || $0.remaining > 0 }) else {
            deliver(.empty)
            return 0
        }
        let (connection, opened) = try start()
        do throws(FDFSClientError) {
            let pipe = try SplicePipes.take()
            defer { SplicePipes.give(pipe) }
            var remaining = opened ? state.withLock { $0.remaining } : try open(connection)
            let dropped = min(skipping, remaining)
            try connection.discard(dropped, operation: FDFSClient.downloadOperation)
            remaining -= dropped
            let piece = Int(min(Int64(count), remaining))
            try Self.splice(piece, from: connection, through: pipe, deliver: deliver)
            remaining -= Int64(piece)
            finish(connection, remaining: remaining)
            return piece
        } catch {
            fail(connection, error)
            throw error
        }
    }

    /// Moves the next `count` bytes of the body from the socket into `pipe` and delivers them
    /// from there; when the pipe fills up first, its bytes and the rest are received into
    /// memory and delivered as `.memory`.
    private static func splice(_ count: Int, from connection: BlockingConnection, through pipe: SplicePipe, deliver: (SplicedBody) -> Void) throws(FDFSClientError) {
        let inPipe = try pipe.fill(from: connection, count: count, operation: FDFSClient.downloadOperation)
        if inPipe == count {
            deliver(.pipe(fd: pipe.readEnd, count: count))
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
        defer { memory.deallocate() }
        try pipe.drain(into: memory, count: inPipe)
        try connection.receive(into: memory + inPipe, count: count - inPipe, operation: FDFSClient.downloadOperation)
        deliver(.memory(UnsafeRawBufferPointer(start: memory, count: count)))
    }

    /// Ends the stream. Its connection goes back to the pool only once the whole body was
    /// taken; before that it is closed (a take blocked on it returns with an error).
    public func close() {
        let idle = state.withLock { s -> BlockingConnection? in
            s.closed = true
            guard let connection = s.connection else { return nil }
            if s.busy {
                connection.abort()
                return nil
            }
            s.connection = nil
            return connection
        }
        idle?.close()
    }

    /// The connection for one take (a pooled one the first time), and whether the request
    /// went out already.
    private func start() throws(FDFSClientError) -> (BlockingConnection, Bool) {
        let current = try state.withLock { s throws(FDFSClientError) -> (BlockingConnection?, Bool) in
            guard !s.closed else {
                throw FDFSClientError(.connectionClosed, operation: FDFSClient.downloadOperation, endpoint: endpoint.description, message: "stream closed")
            }
            s.busy = true
            return (s.connection, s.opened)
        }
        if let connection = current.0 { return (connection, current.1) }
        do throws(FDFSClientError) {
            let connection = try pool.checkout(endpoint)
            state.withLock { $0.connection = connection }
            return (connection, false)
        } catch {
            state.withLock { $0.busy = false }
            throw error
        }
    }

    /// Sends the request and reads the answer's header; returns the body's length.
    private func open(_ connection: BlockingConnection) throws(FDFSClientError) -> Int64 {
        connection.setReceiveTimeout(stallTimeout)
        let length = Int64(try FDFSClient.requestBody(request, on: connection, atMost: Int(asked)))
        state.withLock { s in
            s.opened = true
            s.remaining = length
        }
        return length
    }

    /// After a take that went well: a body taken whole frees its connection.
    private func finish(_ connection: BlockingConnection, remaining: Int64) {
        let done = state.withLock { s -> (connection: BlockingConnection, reuse: Bool)? in
            s.remaining = remaining
            s.busy = false
            guard remaining == 0 || s.closed else { return nil }
            s.connection = nil
            return (connection, remaining == 0 && !s.closed)
        }
        if let done { release(done.connection, reuse: done.reuse) }
    }

    /// After a failed take: the stream is closed; its connection goes back to the pool when
    /// the error left it clean (a status answer, whose body was read).
    private func fail(_ connection: BlockingConnection, _ error: FDFSClientError) {
        state.withLock { s in
            s.busy = false
            s.closed = true
            s.connection = nil
        }
        release(connection, reuse: error.leavesConnectionReusable)
    }

    private func release(_ connection: BlockingConnection, reuse: Bool) {
        guard reuse else { return connection.close() }
        connection.setReceiveTimeout(networkTimeout)
        pool.checkin(connection, key: endpoint.description)
    }
}

extension FDFSClient {
    /// A DOWNLOAD_FILE of `length` bytes of `id` from `offset` on `endpoint`, taken in order
    /// (``SplicedStream``). Nothing is sent before its first take. `stallTimeout` bounds each
    /// wait for the storage (at most the network timeout).
    public func splicedStream(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, stallTimeout: TimeAmount) -> SplicedStream {
        SplicedStream(request: DownloadRequest(offset: offset, length: length, file: FileRequest(id)), endpoint: endpoint, pool: blockingPool,
                      stallTimeout: stallTimeout, networkTimeout: configuration.networkTimeout)
    }

    /// Runs `body` on a download thread, where blocking socket calls belong (a
    /// ``SplicedStream``'s takes); `body` gets false when the download threads have stopped.
    public static func onDownloadThread(_ body: @escaping @Sendable (_ running: Bool) -> Void) {
        DownloadThreads.pool.submit { state in
            if case .active = state { body(true) } else { body(false) }
        }
    }
}
