import FDFSClient
import FDFSProtocol
import Logging
import Synchronization

/// Downloads blocks from the cluster, spread over the replicas, with failover to another
/// storage on errors and a hedged second request when a storage stalls. Knows nothing of the
/// cache or the memory budget: ``BlockStore`` decides what to fetch and keeps what arrives.
public final class BlockFetcher: Sendable {
    let cluster: any ClusterBackend
    let metrics: MountMetrics
    let logger: Logger
    let stallTimeout: Duration

    /// Storages per file ID, asked for at most every 10 s.
    private let knownReplicas = Mutex<[String: (list: [StorageEndpoint], at: ContinuousClock.Instant)]>([:])
    /// Downloads open for handles' streamed READs (``openStream(_:offset:)``): each holds a
    /// connection to a storage for as long as its handle is open.
    private let openStreams = Mutex(0)
    /// At most this many at once; beyond, READs download on their own as before (a server
    /// with hundreds of files open and read slowly must not hold hundreds of storage
    /// connections: FastDFS storages take 256 by default).
    public static let streamLimit = 32
    /// A streaming file's download that has served no READ for this long is closed and
    /// opened again with the next READ, before a storage drops it: FastDFS's storage ends a
    /// send that makes no progress for its `network_timeout` (60 s by default).
    let streamIdleLimit: Duration

    /// `streamIdleLimit`: see ``streamIdleLimit``.
    public init(cluster: any ClusterBackend, metrics: MountMetrics, logger: Logger, stallTimeout: Double, streamIdleLimit: Duration = .seconds(20)) {
        self.cluster = cluster
        self.metrics = metrics
        self.logger = logger
        self.stallTimeout = .milliseconds(Int64(stallTimeout * 1000))
        self.streamIdleLimit = streamIdleLimit
    }

    /// Storages holding the file (cached for a few seconds).
    func replicas(_ id: FileID, refresh: Bool = false) async throws(FSError) -> [StorageEndpoint] {
        let key = id.description
        if !refresh, let cached = knownReplicas(of: id) { return cached }
        let list = try await cluster.replicas(id)
        knownReplicas.withLock { known in
            if known.count > 10_000 { known.removeAll() }
            known[key] = (list, .now)
        }
        return list
    }

    /// The storages holding the file when they were asked for less than 10 s ago.
    func knownReplicas(of id: FileID) -> [StorageEndpoint]? {
        guard let cached = knownReplicas.withLock({ $0[id.description] }), ContinuousClock.now - cached.at < .seconds(10) else { return nil }
        return cached.list
    }

    /// Downloads one block, starting with replica `index % n`; on failure moves on to the
    /// next replica; when the current one stalls for `stallTimeout`, races another. When every
    /// storage named so far has failed or stalls, asks for more once
    /// (``ClusterBackend/moreReadTargets(_:excluding:)``: QUERY_FETCH_ALL again, then the
    /// group's ACTIVE members), so a fresh file whose source died is read from a member that
    /// already holds it even while the tracker still names only the source.
    func download(_ ref: FileRef, index: Int, offset: Int64, length: Int) async throws(FSError) -> Block {
        var list = ref.id.servers(among: try await replicas(ref.id))
        if list.isEmpty { list = ref.id.servers(among: try await replicas(ref.id, refresh: true)) }
        guard !list.isEmpty else {
            throw FSError(.io, ref.id.isPinnedToSource ? "the source storage of appender file \(ref.id) is not available" : "no storage holds \(ref.id)")
        }
        let race = Race<Block>()
        let attempts = Attempts(order: (0..<list.count).map { list[($0 + index) % list.count] })
        let cancels = Cancels()

        @Sendable func attempt(_ endpoint: StorageEndpoint, failover: Bool) {
            if failover { metrics.add(metrics.failovers) }
            let cancel = cancels.make()
            // Watchdog: if this attempt has not finished within the stall timeout, hedge.
            let watchdog = Task {
                try await Task.sleep(for: stallTimeout)
                if !race.isDone {
                    logger.warning("fetch of \(ref.id) block \(index) from \(endpoint) stalls; trying another storage")
                    start()
                }
            }
            Task {
                do throws(FSError) {
                    let block = try await fetchOnce(ref.id, from: endpoint, offset: offset, length: length, cancel: cancel)
                    watchdog.cancel()
                    race.succeed(block)
                } catch {
                    watchdog.cancel()
                    // A losing attempt cancelled once the race was decided.
                    if race.isDone { return }
                    logger.warning("fetch of \(ref.id) block \(index) from \(endpoint) failed: \(error)")
                    switch attempts.failed(endpoint, error) {
                    case .startAnother: start()
                    case .fail(let last): race.fail(last)
                    case .wait: break
                    }
                }
            }
        }

        @Sendable func start() {
            switch attempts.next() {
            case .attempt(let endpoint, let failover):
                attempt(endpoint, failover: failover)
            case .expand(let tried):
                Task {
                    // An appender file has no other storage to fail over to (AppenderSource.swift).
                    let more = ref.id.isPinnedToSource ? [] : await cluster.moreReadTargets(ref.id, excluding: tried)
                    if !more.isEmpty {
                        logger.warning("reading \(ref.id) from storages the tracker did not name first: \(more)")
                        remember(ref.id, more + tried.filter { !attempts.hasFailed($0) })
                    }
                    switch attempts.expanded(more) {
                    case .startAnother: start()
                    case .fail(let last): race.fail(last)
                    case .wait: break
                    }
                }
            case .none:
                break
            }
        }

        start()
        // Attempts still running once one storage delivered (or all failed) are stopped.
        defer { cancels.cancelAll() }
        return try await race.value()
    }

    /// Streams `length` bytes of `ref` at `offset` into a pipe for `deliver`
    /// (``ClusterBackend/readSpliced(_:from:offset:length:stallTimeout:deliver:completion:)``),
    /// then runs `completion`. All of a file's streamed READs go to one of its storages, picked
    /// from the name (unlike block fetches, which alternate): that storage then reads the file
    /// in order, so its own read-ahead works, and the files of many readers still spread over
    /// the replicas. A storage that sends nothing for the stall timeout fails it. No failover:
    /// the caller reads a failed stream through the blocks, which have it. With the replicas
    /// known, no task is involved.
    func stream(_ ref: FileRef, offset: Int64, length: Int, deliver: @escaping @Sendable (SplicedBody) -> Void,
                completion: @escaping @Sendable (Result<Int, FSError>) -> Void) {
        let start: @Sendable ([StorageEndpoint]) -> Void = { [cluster, stallTimeout] replicas in
            guard let source = Self.streamSource(ref, among: replicas) else { return completion(.failure(FSError(.io, "no storage holds \(ref.id)"))) }
            cluster.readSpliced(ref.id, from: source, offset: offset, length: length, stallTimeout: stallTimeout, deliver: deliver, completion: completion)
        }
        if let known = knownReplicas(of: ref.id) { return start(known) }
        Task {
            do throws(FSError) { start(try await replicas(ref.id)) } catch { completion(.failure(error)) }
        }
    }

    /// A download of `ref` from `offset` to its end that a handle's sequential READs take in
    /// order (``SequentialStream``), from the storage ``stream(_:offset:length:deliver:completion:)``
    /// would use; nil while the file's storages are not known (that READ streams on its own,
    /// and asks for them).
    func openStream(_ ref: FileRef, offset: Int64) -> SequentialStream? {
        guard let known = knownReplicas(of: ref.id), let source = Self.streamSource(ref, among: known) else { return nil }
        let admitted = openStreams.withLock { open in
            guard open < Self.streamLimit else { return false }
            open += 1
            return true
        }
        guard admitted else { return nil }
        let download = cluster.openStream(ref.id, from: source, offset: offset, length: ref.size - offset, stallTimeout: stallTimeout)
        return SequentialStream(source: download, offset: offset, end: ref.size, idleLimit: streamIdleLimit) { [self] in openStreams.withLock { $0 -= 1 } }
    }

    /// Downloads open for streamed READs now (tests).
    public var streamsOpen: Int { openStreams.withLock { $0 } }

    /// The storage a file's streamed READs go to, picked from its name among `replicas`.
    private static func streamSource(_ ref: FileRef, among replicas: [StorageEndpoint]) -> StorageEndpoint? {
        let list = ref.id.servers(among: replicas)
        guard !list.isEmpty else { return nil }
        return list[Int((ref.id.generated.crc32 ^ ref.id.generated.timestamp) % UInt32(list.count))]
    }

    /// Replaces the cached replica list of `id` (after a failover found storages that work).
    private func remember(_ id: FileID, _ list: [StorageEndpoint]) {
        knownReplicas.withLock { $0[id.description] = (list, .now) }
    }

    /// Downloads one block from one storage straight into its buffer, with one CRC32 per
    /// 64 KiB chunk computed as each chunk arrives (on the download thread, while the bytes are
    /// still in the CPU cache). `cancel` ends it when another storage won the race.
    func fetchOnce(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int, cancel: DownloadCancel) async throws(FSError) -> Block {
        let storage = ByteStorage(capacity: length)
        let sums = ChunkSums(count: (length + Block.chunkSize - 1) / Block.chunkSize)
        let received = try await cluster.read(id, from: endpoint, offset: offset, into: ReceiveBuffer(base: storage.pointer, count: length),
                                              chunkSize: Block.chunkSize, cancel: cancel) { at, bytes in
            let crc = CRC32.checksum(bytes)
            sums.crcs.withLock { $0[at / Block.chunkSize] = crc }
        }
        guard received == length else {
            throw FSError(.io, "\(endpoint) sent \(received) of \(length) bytes of \(id) at \(offset)")
        }
        storage.count = length
        return Block(storage: storage, chunkCRCs: sums.crcs.withLock { $0 })
    }
}

/// The storages one block download has tried, in order, and what is left to try.
final class Attempts: Sendable {
    enum Next { case attempt(StorageEndpoint, failover: Bool), expand(tried: [StorageEndpoint]), none }
    enum AfterFailure { case startAnother, fail(FSError), wait }

    private struct State {
        var order: [StorageEndpoint]
        var next = 0
        var failed: [StorageEndpoint] = []
        var lastError: FSError?
        var expansion = Expansion.notYet
    }

    private enum Expansion { case notYet, running, done }

    private let state: Mutex<State>

    init(order: [StorageEndpoint]) { state = Mutex(State(order: order)) }

    /// The next storage to try; or, once every one was started, a single request for more.
    func next() -> Next {
        state.withLock { a in
            if a.next < a.order.count {
                a.next += 1
                return .attempt(a.order[a.next - 1], failover: a.next > 1)
            }
            guard a.expansion == .notYet else { return .none }
            a.expansion = .running
            return .expand(tried: a.order)
        }
    }

    /// Records a failed attempt and says what to do: try another, give up with the most
    /// telling error (one other than ENOENT, which a replica that has not synced yet gives),
    /// or wait for attempts (or the request for more storages) still running.
    func failed(_ endpoint: StorageEndpoint, _ error: FSError) -> AfterFailure {
        state.withLock { a in
            a.failed.append(endpoint)
            if a.lastError == nil || error.code != .notFound { a.lastError = error }
            return Self.decide(a)
        }
    }

    /// Adds the storages found by the request for more.
    func expanded(_ more: [StorageEndpoint]) -> AfterFailure {
        state.withLock { a in
            a.order += more
            a.expansion = .done
            return Self.decide(a)
        }
    }

    func hasFailed(_ endpoint: StorageEndpoint) -> Bool { state.withLock { $0.failed.contains(endpoint) } }

    private static func decide(_ a: State) -> AfterFailure {
        if a.next < a.order.count || a.expansion == .notYet { return .startAnother }
        if a.expansion == .done, a.failed.count == a.next, let last = a.lastError { return .fail(last) }
        return .wait
    }
}

/// The cancel handles of one block's attempts; once the race is decided every attempt is
/// cancelled, and one started later is cancelled at once.
final class Cancels: Sendable {
    private let state = Mutex((all: [DownloadCancel](), done: false))

    func make() -> DownloadCancel {
        let cancel = DownloadCancel()
        let done = state.withLock { s in
            if !s.done { s.all.append(cancel) }
            return s.done
        }
        if done { cancel.cancel() }
        return cancel
    }

    func cancelAll() {
        let all = state.withLock { s in
            s.done = true
            defer { s.all = [] }
            return s.all
        }
        for cancel in all { cancel.cancel() }
    }
}

/// CRCs of the 64 KiB chunks of a block being received (one writer at a time, so the
/// lock is never contended).
final class ChunkSums: Sendable {
    let crcs: Mutex<[UInt32]>
    init(count: Int) { crcs = Mutex([UInt32](repeating: 0, count: count)) }
}

/// The first success (or the final failure) of several concurrent attempts.
final class Race<T: Sendable>: Sendable {
    private struct State {
        var result: Result<T, FSError>?
        var waiters: [CheckedContinuation<Result<T, FSError>, Never>] = []
    }

    private let state = Mutex(State())

    var isDone: Bool { state.withLock { $0.result != nil } }

    func succeed(_ value: T) { complete(.success(value)) }
    func fail(_ error: FSError) { complete(.failure(error)) }

    private func complete(_ result: Result<T, FSError>) {
        let waiters = state.withLock { s -> [CheckedContinuation<Result<T, FSError>, Never>] in
            guard s.result == nil else { return [] }
            s.result = result
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }

    func value() async throws(FSError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, FSError>, Never>) in
            let ready = state.withLock { s -> Result<T, FSError>? in
                if let r = s.result { return r }
                s.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
        return try result.get()
    }
}
