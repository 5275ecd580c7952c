import FDFSProtocol
import Logging
import NIOCore
import Synchronization

/// A cluster file as the reader sees it: its ID, the size to read, and the key its blocks
/// are cached under (appender files carry their version so stale blocks are never used).
public struct FileRef: Sendable, Hashable {
    public var id: FileID
    public var size: Int64
    public var cacheKey: String
    /// Check a whole-file read against the CRC32 in the name (normal files).
    public var checkCRC: Bool

    public init(id: FileID, size: Int64, version: String = "0") {
        self.id = id
        self.size = size
        self.cacheKey = id.description.replacingOccurrences(of: "/", with: "+") + "@" + version
        self.checkCRC = id.kind == .normal
    }

    public func blockKey(_ index: Int) -> String { "\(cacheKey)#\(index)" }

    /// The prefix shared by the cached blocks of every version of `id`.
    public static func keyPrefix(_ id: FileID) -> String {
        id.description.replacingOccurrences(of: "/", with: "+") + "@"
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

/// Fetches blocks from the cluster: one fetch per block at a time, spread over the replicas,
/// with failover to another storage on errors and a hedged second request when a storage
/// stalls. Fetched blocks are admitted into the block cache.
public final class BlockFetcher: Sendable {
    let cluster: any ClusterBackend
    let cache: BlockCache
    let budget: MemoryBudget
    let metrics: MountMetrics
    let logger: Logger
    let blockSize: Int
    let stallTimeout: Duration

    private struct State {
        var inflight: [String: Task<Block, any Error>] = [:]
        var replicas: [String: (list: [StorageEndpoint], at: ContinuousClock.Instant)] = [:]
    }

    private let state = Mutex(State())

    public init(cluster: any ClusterBackend, cache: BlockCache, budget: MemoryBudget, metrics: MountMetrics, logger: Logger, blockSize: Int, stallTimeout: Double) {
        self.cluster = cluster
        self.cache = cache
        self.budget = budget
        self.metrics = metrics
        self.logger = logger
        self.blockSize = blockSize
        self.stallTimeout = .milliseconds(Int64(stallTimeout * 1000))
    }

    func range(_ ref: FileRef, _ index: Int) -> (offset: Int64, length: Int) {
        let offset = Int64(index) * Int64(blockSize)
        return (offset, Int(min(Int64(blockSize), ref.size - offset)))
    }

    /// The block, from an in-flight fetch or a new one (the caller already missed the cache).
    public func fetch(_ ref: FileRef, _ index: Int) async throws(FSError) -> Block {
        let task = state.withLock { s -> Task<Block, any Error> in
            let key = ref.blockKey(index)
            if let existing = s.inflight[key] { return existing }
            let task = Task<Block, any Error> { try await self.load(ref, index, prefetch: false) }
            s.inflight[key] = task
            return task
        }
        do {
            return try await task.value
        } catch let error as FSError {
            throw error
        } catch {
            throw FSError(.io, "\(error)")
        }
    }

    public func isInflight(_ key: String) -> Bool { state.withLock { $0.inflight[key] != nil } }

    /// Starts a read-ahead fetch if the block is neither cached nor in flight and the memory
    /// budget allows it now; a block cached on disk is read ahead from the disk instead.
    public func prefetch(_ ref: FileRef, _ index: Int) {
        let key = ref.blockKey(index)
        guard !cache.readAhead(key) else { return }
        let amount = Int64(range(ref, index).length)
        state.withLock { s in
            guard s.inflight[key] == nil, budget.tryAcquire(amount) else { return }
            s.inflight[key] = Task<Block, any Error> { try await self.load(ref, index, prefetch: true) }
        }
    }

    private func finish(_ key: String) {
        _ = state.withLock { $0.inflight.removeValue(forKey: key) }
    }

    /// Downloads a block and hands it to the cache. The block's share of the memory budget
    /// (taken by ``prefetch(_:_:)`` for read-ahead, here for demand fetches) is given back
    /// once the cache has written it, so blocks waiting for the disk count against the budget
    /// too: a disk slower than the network slows reads instead of dropping blocks.
    private func load(_ ref: FileRef, _ index: Int, prefetch: Bool) async throws -> Block {
        let key = ref.blockKey(index)
        defer { finish(key) }
        let (offset, length) = range(ref, index)
        if !prefetch { await budget.acquire(Int64(length)) }
        let block: Block
        do {
            block = try await download(ref, index: index, offset: offset, length: length)
        } catch {
            budget.release(Int64(length))
            throw error
        }
        logger.debug("fetched \(ref.id) block \(index) (\(length) bytes, \(prefetch ? "read-ahead" : "demand"))")
        metrics.add(metrics.bytesFromCluster, Int64(length))
        metrics.add(prefetch ? metrics.prefetches : metrics.cacheMisses)
        let budget = self.budget
        cache.admit(key, block) { budget.release(Int64(length)) }
        return block
    }

    /// Storages holding the file (cached for a few seconds).
    func replicas(_ id: FileID, refresh: Bool = false) async throws(FSError) -> [StorageEndpoint] {
        let key = id.description
        if !refresh, let cached = state.withLock({ $0.replicas[key] }), ContinuousClock.now - cached.at < .seconds(10) {
            return cached.list
        }
        let list = try await cluster.replicas(id)
        state.withLock { s in
            if s.replicas.count > 10_000 { s.replicas.removeAll() }
            s.replicas[key] = (list, .now)
        }
        return list
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

        @Sendable func attempt(_ endpoint: StorageEndpoint, failover: Bool) {
            if failover { metrics.add(metrics.failovers) }
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
                    let block = try await fetchOnce(ref.id, from: endpoint, offset: offset, length: length)
                    watchdog.cancel()
                    race.succeed(block)
                } catch {
                    watchdog.cancel()
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
        return try await race.value()
    }

    /// Replaces the cached replica list of `id` (after a failover found storages that work).
    private func remember(_ id: FileID, _ list: [StorageEndpoint]) {
        state.withLock { $0.replicas[id.description] = (list, .now) }
    }

    func fetchOnce(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int) async throws(FSError) -> Block {
        let storage = ByteStorage(capacity: length)
        let sums = ChunkSums(count: (length + Block.chunkSize - 1) / Block.chunkSize)
        let box = UncheckedBox((storage, sums))
        try await cluster.read(id, from: endpoint, offset: offset, length: Int64(length)) { chunk in
            let (storage, sums) = box.value
            let n = min(chunk.readableBytes, storage.capacity - storage.count)
            guard n > 0 else { return }
            let start = storage.count
            chunk.withUnsafeReadableBytes { bytes in
                (storage.pointer + start).copyMemory(from: bytes.baseAddress!, byteCount: n)
            }
            // Checksum while the bytes are still in the CPU cache.
            var position = start
            while position < start + n {
                let chunkIndex = position / Block.chunkSize
                let chunkEnd = min((chunkIndex + 1) * Block.chunkSize, start + n)
                var crc = CRC32(continuing: sums.crcs[chunkIndex])
                crc.update(UnsafeRawBufferPointer(start: storage.pointer + position, count: chunkEnd - position))
                sums.crcs[chunkIndex] = crc.value
                position = chunkEnd
            }
            storage.count += n
        }
        guard storage.count == length else {
            throw FSError(.io, "\(endpoint) sent \(storage.count) of \(length) bytes of \(id) at \(offset)")
        }
        return Block(storage: storage, chunkCRCs: sums.crcs)
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

/// Running CRCs of the 64 KiB chunks of a block being received (one writer at a time).
final class ChunkSums: @unchecked Sendable {
    var crcs: [UInt32]
    init(count: Int) { crcs = [UInt32](repeating: 0, count: count) }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
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
