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
    /// Which fetched blocks the cache keeps (`-o cache=`).
    public let mode: CacheMode

    private let inflight = Mutex<[BlockKey: Task<Block, any Error>]>([:])
    private let seen = Mutex(SeenBlocks())
    private let staged: Mutex<StagedBlocks>
    /// Files up to this size are always cached in `reread`.
    let smallFile: Int64

    /// Whether READs of blocks the cache would not keep may go from a storage's socket to the
    /// reader through a pipe (``streams(_:)``; `-o nosplice` turns it off).
    let splicesStreams: Bool

    public init(cache: BlockCache, fetcher: BlockFetcher, budget: MemoryBudget, metrics: MountMetrics, logger: Logger, blockSize: Int, mode: CacheMode,
                smallFile: Int64 = CacheMode.smallFile, splicesStreams: Bool = true) {
        self.mode = mode
        self.splicesStreams = splicesStreams
        self.smallFile = smallFile
        self.staged = Mutex(StagedBlocks(limit: budget.limit))
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

    /// The one place deciding whether a fetched block is written to the disk cache (which may
    /// still decline it when it cannot make room). `always`: every block; `never`: none;
    /// `reread`: blocks of files up to ``CacheMode/smallFile``, blocks a random reader
    /// fetched, and blocks fetched a second time; a large file streamed once is not cached.
    func shouldCache(_ key: BlockKey, _ reason: FetchReason) -> Bool {
        switch mode {
        case .always: return true
        case .never: return false
        case .reread:
            if reason.fileSize <= smallFile || !reason.sequential { return true }
            return seen.withLock { $0.fetchedAgain(key) }
        }
    }

    /// Whether in-order READs of `ref` may bypass the blocks and go from a storage through a
    /// pipe (``FileReader``): only where the cache would not keep what a stream fetches
    /// (`never`, or `reread` for a file above the small-file size).
    func streams(_ ref: FileRef) -> Bool {
        guard splicesStreams else { return false }
        switch mode {
        case .always: return false
        case .never: return true
        case .reread: return ref.size > smallFile
        }
    }

    /// Whether block `key` is cached, in memory, or being fetched: a READ touching it goes
    /// through the blocks.
    func holds(_ key: BlockKey) -> Bool {
        inflight.withLock { $0[key] != nil } || staged.withLock { $0.block(key) != nil } || cache.contains(key)
    }

    /// `reread`: records that a stream read block `key` without fetching it; false when the
    /// block was fetched or streamed before, so reading it now is a re-read that the cache
    /// keeps (the READ goes through the blocks, whose fetch admits it).
    func firstPass(_ key: BlockKey) -> Bool {
        mode != .reread || seen.withLock { $0.firstSight(key) }
    }

    /// Copies bytes of a cached block (in memory until written, or on disk) without waiting:
    /// nil when the block is not cached or failed its check (then it is dropped).
    func cached(_ key: BlockKey, offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> BlockCache.Hit? {
        if let block = staged.withLock({ $0.block(key) }), offset >= 0, length >= 0, offset + length <= block.length {
            destination.copyMemory(from: block.storage.pointer + offset, byteCount: length)
            used(key, upTo: offset + length, of: block)
            return BlockCache.Hit(blockLength: block.length, blockCRC: block.crc32)
        }
        return cache.read(key, offset: offset, length: length, into: destination)
    }

    /// A block held in memory (staged, or waiting for the cache's writer) that holds the
    /// `length` bytes at `offset`, for a reply straight from it.
    func inMemory(_ key: BlockKey, offset: Int, length: Int) -> Block? {
        guard let block = staged.withLock({ $0.block(key) }) ?? cache.inMemory(key), offset + length <= block.length else { return nil }
        used(key, upTo: offset + length, of: block)
        return block
    }

    /// A READ used a block up to `end`: a staged block read to its end is let go.
    func used(_ key: BlockKey, upTo end: Int, of block: Block) {
        guard end >= block.length, let gone = staged.withLock({ $0.remove(key) }) else { return }
        budget.release(Int64(gone.length))
    }

    /// The block, from a fetch in flight, from memory (a fetch that landed after the caller
    /// missed the cache), or from a new fetch. With `unlessCached`, nil when the block reached
    /// the disk cache meanwhile: the caller reads it from there (and calls again without it if
    /// that read fails). The check and the start of a fetch happen under one lock, so a block
    /// whose fetch ends just as a READ misses it is not fetched twice.
    /// `sequential`: the reader's reads follow each other (``FetchReason``).
    func fetch(_ ref: FileRef, _ index: Int, sequential: Bool = true, unlessCached: Bool = false) async throws(FSError) -> Block? {
        let key = ref.key(index)
        let found = inflight.withLock { inflight -> Found in
            if let existing = inflight[key] { return .fetching(existing) }
            // A finished fetch is staged or offered to the cache before it leaves `inflight`.
            if let block = staged.withLock({ $0.block(key) }) ?? cache.inMemory(key) { return .inMemory(block) }
            if unlessCached, cache.contains(key) { return .onDisk }
            let task = Task<Block, any Error> { try await self.load(ref, index, .demand, sequential: sequential) }
            inflight[key] = task
            return .fetching(task)
        }
        switch found {
        case .inMemory(let block): return block
        case .onDisk: return nil
        case .fetching(let task):
            do {
                return try await task.value
            } catch let error as FSError {
                throw error
            } catch {
                throw FSError(.io, "\(error)")
            }
        }
    }

    /// Where ``fetch(_:_:sequential:unlessCached:)`` finds a block.
    private enum Found {
        case fetching(Task<Block, any Error>)
        case inMemory(Block)
        case onDisk
    }

    /// Starts a read-ahead fetch if the block is neither cached nor in flight and the memory
    /// budget allows it now; a block cached on disk is read ahead from the disk instead.
    func prefetch(_ ref: FileRef, _ index: Int) {
        let key = ref.key(index)
        guard staged.withLock({ $0.block(key) }) == nil, !cache.readAhead(key) else { return }
        let amount = Int64(range(ref, index).length)
        inflight.withLock { inflight in
            guard inflight[key] == nil, budget.tryAcquire(amount) else { return }
            inflight[key] = Task<Block, any Error> { try await self.load(ref, index, .readAhead, sequential: true) }
        }
    }

    /// Downloads a block and offers it to the cache. Its share of the memory budget (taken by
    /// ``prefetch(_:_:)`` for read-ahead, here for demand fetches) is given back once the cache
    /// has written it.
    private func load(_ ref: FileRef, _ index: Int, _ purpose: Purpose, sequential: Bool) async throws -> Block {
        let key = ref.key(index)
        defer { _ = inflight.withLock { $0.removeValue(forKey: key) } }
        let (offset, length) = range(ref, index)
        if purpose == .demand {
            // Staged blocks nobody read give way to a READ waiting for memory.
            while !budget.tryAcquire(Int64(length)) {
                guard let old = staged.withLock({ $0.removeOldest() }) else {
                    await budget.acquire(Int64(length))
                    break
                }
                budget.release(Int64(old.length))
            }
        }
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
        if shouldCache(key, FetchReason(fileSize: ref.size, sequential: sequential)) {
            cache.admit(key, block) { budget.release(Int64(length)) }
        } else {
            for out in staged.withLock({ $0.put(key, block) }) { budget.release(Int64(out.length)) }
        }
        return block
    }

    /// Forgets every cached block of one version of a file (a failed whole-file check, or an
    /// appender file that changed).
    func drop(_ file: FileVersion) {
        for gone in staged.withLock({ $0.removeAll(of: file) }) { budget.release(Int64(gone.length)) }
        cache.dropAll(file)
    }
}
