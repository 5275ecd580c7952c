import Dispatch
import FDFSClient
import FDFSProtocol
import NIOPosix
import Synchronization

/// A ranged download a sequential reader takes in order (``ClusterBackend/openStream(_:from:offset:length:stallTimeout:)``).
/// Its calls block: make them from ``run(_:)``, one at a time.
public protocol ClusterStream: Sendable {
    /// Runs `body` where the stream's calls may block; `body` gets false when that is no
    /// longer possible (the mount is stopping).
    func run(_ body: @escaping @Sendable (_ running: Bool) -> Void)
    /// Drops the next `skipping` bytes, then delivers the next `count` (at most
    /// ``SplicePipe/capacity``; fewer where the range ends, nothing at its end) and returns how
    /// many it delivered: `deliver` runs once per take that succeeds. After an error the stream
    /// is closed.
    func take(skipping: Int64, count: Int, deliver: (SplicedBody) -> Void) throws(FSError) -> Int
    /// Ends the download early (a take blocked in it fails).
    func close()
}

/// A ``SplicedStream`` of ``FDFSClient``: the storage's bytes go from its socket into a pipe.
struct SplicedClusterStream: ClusterStream {
    let stream: SplicedStream
    /// What the errors say the download was.
    let what: String

    func run(_ body: @escaping @Sendable (Bool) -> Void) { FDFSClient.onDownloadThread(body) }

    func take(skipping: Int64, count: Int, deliver: (SplicedBody) -> Void) throws(FSError) -> Int {
        do { return try stream.take(skipping: skipping, count: count, deliver: deliver) } catch { throw FSError(error, what) }
    }

    func close() { stream.close() }
}

/// The default ``ClusterStream``: each piece is one ranged download into memory, put into a
/// pipe (backends without a socket to splice from: tests). Runs on NIO's blocking pool.
public final class PiecewiseClusterStream: ClusterStream {
    let backend: any ClusterBackend
    let id: FileID
    let endpoint: StorageEndpoint
    private let position: Mutex<(next: Int64, end: Int64, closed: Bool)>

    /// `length` bytes of `id` from `offset`, read from `endpoint` of `backend`.
    public init(backend: any ClusterBackend, id: FileID, endpoint: StorageEndpoint, offset: Int64, length: Int64) {
        self.backend = backend
        self.id = id
        self.endpoint = endpoint
        self.position = Mutex((offset, offset + length, false))
    }

    public func run(_ body: @escaping @Sendable (Bool) -> Void) {
        NIOThreadPool.singleton.submit { state in
            if case .active = state { body(true) } else { body(false) }
        }
    }

    public func take(skipping: Int64, count: Int, deliver: (SplicedBody) -> Void) throws(FSError) -> Int {
        let (offset, length) = try position.withLock { p throws(FSError) -> (Int64, Int) in
            guard !p.closed else { throw FSError(.io, "stream of \(id) closed") }
            let from = min(p.next + skipping, p.end)
            return (from, Int(min(Int64(count), p.end - from)))
        }
        let storage = ByteStorage(capacity: max(length, 1))
        let received = Mutex<Result<Int, FSError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task { [backend, id, endpoint] in
            do throws(FSError) {
                let n = try await backend.read(id, from: endpoint, offset: offset, into: ReceiveBuffer(base: storage.pointer, count: length),
                                               chunkSize: max(length, 1), cancel: DownloadCancel()) { _, _ in }
                received.withLock { $0 = .success(n) }
            } catch {
                received.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        let n = try received.withLock { $0! }.get()
        do throws(FDFSClientError) {
            try withExtendedLifetime(storage) { () throws(FDFSClientError) in
                try SplicePipe.deliver(UnsafeRawBufferPointer(start: storage.pointer, count: n), deliver)
            }
        } catch { throw FSError(error, "pipe for \(id)") }
        position.withLock { $0.next = offset + Int64(n) }
        return n
    }

    public func close() { position.withLock { $0.closed = true } }
}

extension ClusterStream {
    /// Takes the stream's `count` bytes in one take on its thread, then runs `completion` there.
    func takeWhole(_ count: Int, deliver: @escaping @Sendable (SplicedBody) -> Void, completion: @escaping @Sendable (Result<Int, FSError>) -> Void) {
        run { running in
            completion(Result { () throws(FSError) -> Int in
                guard running else { throw FSError(.io, "download threads stopped") }
                return try take(skipping: 0, count: count, deliver: deliver)
            })
        }
    }
}

extension ClusterBackend {
    /// Receives the range into memory and hands it over through a pipe.
    public func readSpliced(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, stallTimeout: Duration,
                            deliver: @escaping @Sendable (SplicedBody) -> Void, completion: @escaping @Sendable (Result<Int, FSError>) -> Void) {
        PiecewiseClusterStream(backend: self, id: id, endpoint: endpoint, offset: offset, length: Int64(length)).takeWhole(length, deliver: deliver, completion: completion)
    }

    public func openStream(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, stallTimeout: Duration) -> any ClusterStream {
        PiecewiseClusterStream(backend: self, id: id, endpoint: endpoint, offset: offset, length: length)
    }
}
