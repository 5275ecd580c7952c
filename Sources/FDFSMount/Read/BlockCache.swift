import Logging
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The on-disk block cache: one file per cached cluster file version under `dir/XX/`, its
/// blocks in fixed slots; a hard byte cap enforced when a block is admitted (LRU eviction makes
/// room first), and an index rebuilt from the files at start, so the cache survives a remount.
/// The file format (slots, headers, checks) is in BlockCache+Slots.swift.
///
/// Admission is write-behind: the block is served from memory until the writer thread has put
/// it on disk, through the page cache or, with `directIO`, with `O_DIRECT` (less CPU for a cold
/// read, but reads after a remount then come from the disk: `Scripts/bench-mount` prints both).
/// Every change to the files (slot writes, punches, removals) runs on that one writer thread,
/// in order. Whether a fetched block is offered here at all is decided by
/// ``BlockStore/shouldCache(_:_:)``.
public final class BlockCache: Sendable {
    /// Most bytes waiting for the writer; beyond it, blocks are not admitted (the read still
    /// succeeds, the block is just not cached). The block store keeps blocks waiting for the
    /// disk within its memory budget, so this only guards other callers.
    static let maxBacklog = 256 << 20

    public let dir: String
    public let capacity: Int64
    /// Largest block; a slot holds its header page and this many bytes.
    public let blockSize: Int
    let slotSize: Int64
    let metrics: MountMetrics
    let logger: Logger
    let index: Mutex<CacheIndex>
    let writer = DispatchQueue(label: "fdfs.block-cache.writer")
    let directIO: Atomic<Bool>

    /// `blockSize` is the largest block admitted (the mount's block size, a multiple of 4 KiB);
    /// `directIO: true` writes with O_DIRECT (`-o direct_cache`).
    public init(dir: String, capacity: Int64, blockSize: Int = 1 << 20, directIO: Bool = false, metrics: MountMetrics, logger: Logger) throws(FSError) {
        self.dir = dir
        self.capacity = capacity
        self.blockSize = (blockSize + 4095) & ~4095
        self.slotSize = Int64(Self.dataOffset + self.blockSize)
        self.directIO = Atomic(directIO)
        self.metrics = metrics
        self.logger = logger
        self.index = Mutex(CacheIndex())
        try POSIX.mkdirs(dir)
        rebuild()
    }

    /// Bytes in the cache (slots: header page and data pages), counting blocks being written.
    public var usedBytes: Int64 { index.withLock { $0.lru.used + $0.pending + $0.deferredBytes } }
    public var blockCount: Int { index.withLock { $0.lru.count } }

    public func contains(_ key: BlockKey) -> Bool { index.withLock { $0.lru.contains(key) || $0.writing[key] != nil } }

    /// Whether the block is cached; when it is on disk, asks the kernel to start reading it
    /// (it may have left the page cache, or never entered it with O_DIRECT writes).
    public func readAhead(_ key: BlockKey) -> Bool {
        let found = index.withLock { index -> (cached: Bool, onDisk: Bool) in
            if index.writing[key] != nil { return (true, false) }
            let onDisk = index.lru.contains(key)
            return (onDisk, onDisk)
        }
        if found.onDisk { adviseWillNeed(key) }
        return found.cached
    }

    /// Waits until every admitted block is on disk (tests, and before unmounting).
    public func flush() { writer.sync {} }

    /// Accepts a block, evicting least recently used blocks first so that the cap is never
    /// exceeded; it is written to disk in the background and served from memory until then.
    /// A block larger than the whole cache, or one arriving while the writer is too far
    /// behind, is not stored. `written` runs once the block is on disk or was not admitted.
    @discardableResult
    public func admit(_ key: BlockKey, _ block: Block, written: @escaping @Sendable () -> Void = {}) -> Bool {
        let total = Self.fileSize(dataLength: block.length)
        var evicted: [BlockKey] = []
        // Room is reserved first (evicting as needed); the block is indexed only once its file
        // is complete, so a reader never finds an indexed block whose file is partial.
        let reserved = index.withLock { index -> Bool in
            guard total <= capacity, block.length <= blockSize, !index.lru.contains(key), index.writing[key] == nil,
                  index.deferred[key] == nil, index.backlog + block.length <= Self.maxBacklog else { return false }
            while index.used + total > capacity, let victim = index.lru.removeOldest() { evicted.append(victim) }
            guard index.used + total <= capacity else { return false }
            index.pending += total
            index.backlog += block.length
            index.writing[key] = block
            index.retain(key.file)
            return true
        }
        for victim in evicted { release(victim) }
        metrics.add(metrics.cacheEvictions, Int64(evicted.count))
        guard reserved else {
            written()
            return false
        }
        writer.async {
            self.write(key, block, total: total)
            written()
        }
        return true
    }

    /// Runs on the writer queue: writes the block into its slot, then indexes it (unless it was
    /// dropped meanwhile).
    private func write(_ key: BlockKey, _ block: Block, total: Int64) {
        let ok = writeSlot(key, block)
        // Written from the bytes the chunk CRCs were computed over: verified (see ``span``).
        let hit = Hit(blockLength: block.length, blockCRC: block.crc32)
        let keep = index.withLock { index -> Bool in
            index.pending -= total
            index.backlog -= block.length
            guard index.writing[key] === block else { return false }
            index.writing[key] = nil
            if ok {
                index.lru.insert(key, size: total)
                index.verified[key] = hit
            }
            return ok
        }
        // Dropped while it was being written, or the write failed: free the slot (and the
        // file, if nothing else lives there).
        if !keep { release(key) }
    }

    /// Frees the slot of a block no longer indexed (evicted or dropped), or the whole file when
    /// it was the file's last block; on the writer thread, after the writes queued before it.
    func release(_ key: BlockKey) {
        // Queued under the lock, so it is ordered against the writes of later admissions.
        index.withLock { index in
            let hit = index.verified.removeValue(forKey: key)
            if index.pins[key] != nil {
                // Being spliced: the slot goes when the last splice of it is done (``unpin``).
                let bytes = Self.fileSize(dataLength: hit?.blockLength ?? blockSize)
                index.deferred[key] = bytes
                index.deferredBytes += bytes
                return
            }
            let last = index.release(key.file)
            writer.async { self.discard(key, wholeFile: last) }
        }
    }

    /// Ends one splice of a block (``CachedSpan``); a slot released meanwhile goes now.
    func unpin(_ key: BlockKey) {
        index.withLock { index in
            let left = (index.pins[key] ?? 1) - 1
            index.pins[key] = left > 0 ? left : nil
            guard left <= 0, let bytes = index.deferred.removeValue(forKey: key) else { return }
            index.deferredBytes -= bytes
            let last = index.release(key.file)
            writer.async { self.discard(key, wholeFile: last) }
        }
    }

    /// Where the kernel can splice `length` bytes at `offset` of a cached block from: the
    /// block's slot in its cache file, opened and pinned (not punched out until the span is
    /// gone). Only for blocks verified in this mount's life: written by it (their chunk CRCs
    /// computed over the bytes written), or read whole from disk by it with every chunk
    /// checked. Nil otherwise: the caller reads (and checks) the block instead.
    public func span(_ key: BlockKey, offset: Int, length: Int) -> CachedSpan? {
        let hit = index.withLock { index -> Hit? in
            guard let hit = index.verified[key], offset >= 0, length > 0, offset + length <= hit.blockLength,
                  index.lru.touch(key) else { return nil }
            index.pins[key, default: 0] += 1
            return hit
        }
        guard let hit else { return nil }
        let fd = open(path(key.file), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            unpin(key)
            forget(key)
            return nil
        }
        return CachedSpan(cache: self, key: key, fd: fd, offset: slotOffset(key.index) + Int64(Self.dataOffset + offset), count: length, hit: hit)
    }

    /// Records that every chunk of an on-disk block was checked (``readSlot``).
    func markVerified(_ key: BlockKey, _ hit: Hit) {
        index.withLock { index in
            if index.lru.contains(key) { index.verified[key] = hit }
        }
    }

    /// A block still waiting for the writer (served from memory).
    func inMemory(_ key: BlockKey) -> Block? { index.withLock { $0.writing[key] } }

    public struct Hit: Sendable {
        /// Length of the whole block.
        public var blockLength: Int
        /// CRC32 of the whole block (from its verified chunk CRCs).
        public var blockCRC: UInt32
    }

    /// Copies `length` bytes at `offset` within the block into `destination`, after checking
    /// the CRC of every chunk they touch. A missing block gives nil; a corrupt one is dropped
    /// (and counted) and gives nil, so the caller fetches it again.
    public func read(_ key: BlockKey, offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> Hit? {
        let found = index.withLock { index -> (indexed: Bool, inMemory: Block?) in
            if let block = index.writing[key] { return (false, block) }
            return (index.lru.touch(key), nil)
        }
        if let block = found.inMemory {
            guard offset >= 0, length >= 0, offset + length <= block.length else { return nil }
            destination.copyMemory(from: block.storage.pointer + offset, byteCount: length)
            return Hit(blockLength: block.length, blockCRC: block.crc32)
        }
        guard found.indexed else { return nil }
        return readSlot(key, offset: offset, length: length, into: destination)
    }

    /// Forgets a block that was indexed but whose cache file has gone.
    func forget(_ key: BlockKey) {
        if index.withLock({ $0.lru.remove(key) }) { release(key) }
    }

    /// Removes a block. False when it was not cached any more (evicted while it was being
    /// read, so its slot may already be a hole: nothing to report).
    @discardableResult
    public func drop(_ key: BlockKey, reason: String) -> Bool {
        let (indexed, pending) = index.withLock { index -> (Bool, Bool) in
            let pending = index.writing.removeValue(forKey: key) != nil
            return (index.lru.remove(key), pending)
        }
        guard indexed || pending else { return false }
        logger.warning("block cache: dropping \(key): \(reason)")
        if indexed { release(key) }
        return true
    }

    /// Removes every block of one version of a file.
    public func dropAll(_ file: FileVersion) { dropAll { $0 == file } }

    /// Removes every block whose cache name starts with `prefix` (``FileRef/keyPrefix(_:)``:
    /// every version of one file ID).
    public func dropAll(prefix: String) { dropAll { $0.diskName.hasPrefix(prefix) } }

    private func dropAll(where matches: (FileVersion) -> Bool) {
        let keys = index.withLock { index -> [BlockKey] in
            let indexed = index.lru.keys.filter { matches($0.file) }
            for key in indexed { _ = index.lru.remove(key) }
            for key in index.writing.keys where matches(key.file) { index.writing[key] = nil }
            return indexed
        }
        for key in keys { release(key) }
    }
}

/// What the cache holds: blocks on disk (LRU order and bytes), blocks waiting for the writer
/// (served from memory meanwhile), and how many blocks each cache file holds.
struct CacheIndex {
    var lru = LRU<BlockKey>()
    /// Bytes reserved for blocks being written (not indexed yet).
    var pending: Int64 = 0
    /// Blocks waiting for the writer, and their data bytes.
    var writing: [BlockKey: Block] = [:]
    var backlog = 0
    /// Blocks verified in this mount's life (written by it, or read whole and checked).
    var verified: [BlockKey: BlockCache.Hit] = [:]
    /// Splices in progress per block.
    var pins: [BlockKey: Int] = [:]
    /// Released blocks whose slot waits for their splices to end, with the bytes they hold.
    var deferred: [BlockKey: Int64] = [:]
    var deferredBytes: Int64 = 0

    /// Bytes counted against the capacity.
    var used: Int64 { lru.used + pending + deferredBytes }
    /// Blocks (indexed or being written) per cache file, so a file goes with its last block.
    private var blocksPerFile: [FileVersion: Int] = [:]

    mutating func retain(_ file: FileVersion) { blocksPerFile[file, default: 0] += 1 }

    /// Counts one block of `file` gone; true when it was the last.
    mutating func release(_ file: FileVersion) -> Bool {
        let left = (blocksPerFile[file] ?? 1) - 1
        blocksPerFile[file] = left > 0 ? left : nil
        return left <= 0
    }
}
