import Logging
import Synchronization

/// Where the readers of every open file get blocks: the disk cache first, else one fetch per
/// block at a time (a second reader of a block joins the fetch in flight). Every fetch holds
/// its bytes in the mount's memory budget until the cache has written the block (or declined
/// it), so a disk slower than the network slows reads instead of dropping blocks. One per mount.
public final class BlockStore: Sendable {
    /// Why a block is fetched.
    public enum Purpose: Sendable {
        /// A READ is waiting for it.
        case demand
        /// The read-ahead window reached it.
        case readAhead
    }

    public let cache: BlockCache
    public let fetcher: BlockFetcher
    let budget: MemoryBudget
    let metrics: MountMetrics
    let logger: Logger
    /// Size of every block but a file's last.
    public let blockSize: Int

    private let inflight = Mutex<[BlockKey: Task<Block, any Error>]>([:])

    public init(cache: BlockCache, fetcher: BlockFetcher, budget: MemoryBudget, metrics: MountMetrics, logger: Logger, blockSize: Int) {
        self.cache = cache
        self.fetcher = fetcher
        self.budget = budget
        self.metrics = metrics
        self.logger = logger
        self.blockSize = blockSize
    }

    /// Where block `index` of `ref` lies in the file.
    func range(_ ref: FileRef, _ index: Int) -> (offset: Int64, length: Int) {
        let offset = Int64(index) * Int64(blockSize)
        return (offset, Int(min(Int64(blockSize), ref.size - offset)))
    }

    /// The one place deciding whether a fetched block is written to the disk cache. Today
    /// every block is offered (the cache may still decline it when it cannot make room).
    func shouldCache(_ key: BlockKey, _ purpose: Purpose) -> Bool { true }

    /// Copies bytes of a cached block (in memory until written, or on disk) without waiting:
    /// nil when the block is not cached or failed its check (then it is dropped).
    func cached(_ key: BlockKey, offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> BlockCache.Hit? {
        cache.read(key, offset: offset, length: length, into: destination)
    }

    public func isInflight(_ key: BlockKey) -> Bool { inflight.withLock { $0[key] != nil } }

    /// The block, from a fetch in flight or a new one (the caller already missed the cache).
    func fetch(_ ref: FileRef, _ index: Int) async throws(FSError) -> Block {
        let key = ref.key(index)
        let task = inflight.withLock { inflight -> Task<Block, any Error> in
            if let existing = inflight[key] { return existing }
            let task = Task<Block, any Error> { try await self.load(ref, index, .demand) }
            inflight[key] = task
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

    /// Starts a read-ahead fetch if the block is neither cached nor in flight and the memory
    /// budget allows it now; a block cached on disk is read ahead from the disk instead.
    func prefetch(_ ref: FileRef, _ index: Int) {
        let key = ref.key(index)
        guard !cache.readAhead(key) else { return }
        let amount = Int64(range(ref, index).length)
        inflight.withLock { inflight in
            guard inflight[key] == nil, budget.tryAcquire(amount) else { return }
            inflight[key] = Task<Block, any Error> { try await self.load(ref, index, .readAhead) }
        }
    }

    /// Downloads a block and offers it to the cache. Its share of the memory budget (taken by
    /// ``prefetch(_:_:)`` for read-ahead, here for demand fetches) is given back once the cache
    /// has written it.
    private func load(_ ref: FileRef, _ index: Int, _ purpose: Purpose) async throws -> Block {
        let key = ref.key(index)
        defer { _ = inflight.withLock { $0.removeValue(forKey: key) } }
        let (offset, length) = range(ref, index)
        if purpose == .demand { await budget.acquire(Int64(length)) }
        let block: Block
        do {
            block = try await fetcher.download(ref, index: index, offset: offset, length: length)
        } catch {
            budget.release(Int64(length))
            throw error
        }
        logger.debug("fetched \(ref.id) block \(index) (\(length) bytes, \(purpose == .demand ? "demand" : "read-ahead"))")
        metrics.add(metrics.bytesFromCluster, Int64(length))
        metrics.add(purpose == .readAhead ? metrics.prefetches : metrics.cacheMisses)
        let budget = self.budget
        if shouldCache(key, purpose) {
            cache.admit(key, block) { budget.release(Int64(length)) }
        } else {
            budget.release(Int64(length))
        }
        return block
    }

    /// Forgets every cached block of one version of a file (a failed whole-file check, or an
    /// appender file that changed).
    func drop(_ file: FileVersion) { cache.dropAll(file) }
}
