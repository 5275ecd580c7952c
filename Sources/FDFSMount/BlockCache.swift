import FDFSProtocol
import Logging
import Dispatch
import Synchronization
import CFastCRC

#if canImport(Glibc)
import Glibc
#endif

/// A block of file content with a CRC32 per 64 KiB chunk.
public final class Block: Sendable {
    public static let chunkSize = 64 << 10
    public let storage: ByteStorage
    public let chunkCRCs: [UInt32]

    public init(storage: ByteStorage, chunkCRCs: [UInt32]) {
        self.storage = storage
        self.chunkCRCs = chunkCRCs
    }

    public var length: Int { storage.count }

    /// CRC32 of the whole block (combined from the chunk CRCs).
    public var crc32: UInt32 { Self.combine(chunkCRCs, length: length) }

    static func combine(_ crcs: [UInt32], length: Int) -> UInt32 {
        var crc: UInt32 = 0
        var remaining = length
        for (index, chunk) in crcs.enumerated() {
            let size = min(chunkSize, remaining)
            crc = index == 0 ? chunk : CRC32.combine(crc, chunk, secondLength: Int64(size))
            remaining -= size
        }
        return crc
    }

    /// Computes the chunk CRCs of `storage`.
    public static func checksums(_ storage: ByteStorage) -> [UInt32] {
        var crcs: [UInt32] = []
        var offset = 0
        while offset < storage.count {
            let size = min(chunkSize, storage.count - offset)
            crcs.append(CRC32.checksum(UnsafeRawBufferPointer(start: storage.pointer + offset, count: size)))
            offset += size
        }
        return crcs
    }
}

/// The on-disk block cache: one file per cached cluster file (per version) under `dir/XX/`, its
/// blocks in fixed slots; a hard byte cap enforced when a block is admitted (LRU eviction makes
/// room first), and an index rebuilt from the files at start, so the cache survives a remount.
///
/// Slot `i` starts at `i * slotSize` (slotSize = 4 KiB + block size): a 4 KiB header page
/// (magic, length, chunk size, chunk count, slot size, one CRC32 per 64 KiB chunk), then the
/// data padded to whole pages. Slots not cached are holes; an evicted block's slot is punched
/// out again, and a file goes with its last block. One file per cluster file rather than one
/// per block: creating a file for every 1 MiB block cost ext4 about as much as writing it
/// (1024 block files took 1.1–3.3 s here, the same bytes written into one file 0.24–0.78 s),
/// and that made the cache writer the limit of cold reads.
///
/// Admission is write-behind: the block is served from memory until the writer thread has put
/// it on disk, through the page cache or, with `directIO`, with `O_DIRECT` (less CPU for a cold
/// read, but reads after a remount then come from the disk: `Scripts/bench-mount` prints both).
/// Every change to the files (slot writes, punches, removals) runs on that one writer thread,
/// in order.
public final class BlockCache: Sendable {
    static let magic: UInt32 = 0x3342_4446 // "FDB3"
    /// Offset of the data in a slot (one page, so `O_DIRECT` I/O stays aligned).
    static let dataOffset = 4096
    /// Most bytes waiting for the writer; beyond it, blocks are not admitted (the read still
    /// succeeds, the block is just not cached). The fetcher keeps blocks waiting for the disk
    /// within its memory budget, so this only guards other callers.
    static let maxBacklog = 256 << 20
    static let suffix = ".blocks"

    public let dir: String
    public let capacity: Int64
    /// Largest block; a slot holds its header page and this many bytes.
    public let blockSize: Int
    let slotSize: Int64
    let metrics: MountMetrics
    let logger: Logger
    private let lru: Mutex<LRU>
    private let writer = DispatchQueue(label: "fdfs.block-cache.writer")
    private let directIO: Atomic<Bool>

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
        self.lru = Mutex(LRU())
        try POSIX.mkdirs(dir)
        rebuild()
    }

    /// Bytes in the cache (slots: header page and data pages), counting blocks being written.
    public var usedBytes: Int64 { lru.withLock { $0.used + $0.pending } }
    public var blockCount: Int { lru.withLock { $0.count } }

    public func contains(_ key: String) -> Bool { lru.withLock { $0.contains(key) || $0.writing[key] != nil } }

    /// Whether the block is cached; when it is on disk, asks the kernel to start reading it
    /// (it may have left the page cache, or never entered it with O_DIRECT writes).
    public func readAhead(_ key: String) -> Bool {
        let found = lru.withLock { lru -> (cached: Bool, onDisk: Bool) in
            if lru.writing[key] != nil { return (true, false) }
            let onDisk = lru.contains(key)
            return (onDisk, onDisk)
        }
        if found.onDisk {
            let (file, index) = Self.split(key)
            let fd = open(path(file), O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                _ = posix_fadvise(fd, Int(slotOffset(index)), Int(slotSize), POSIX_FADV_WILLNEED)
                close(fd)
            }
        }
        return found.cached
    }

    /// Waits until every admitted block is on disk (tests, and before unmounting).
    public func flush() { writer.sync {} }

    /// A block key is `FILE#INDEX`: the cache file it lives in and its slot there (a key without
    /// `#N` is slot 0 of its own file).
    static func split(_ key: String) -> (file: String, index: Int) {
        if let hash = key.lastIndex(of: "#"), let index = Int(key[key.index(after: hash)...]), index >= 0 {
            return (String(key[..<hash]), index)
        }
        return (key, 0)
    }

    static func subdir(_ key: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in key.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return FileID.hex(UInt8(hash & 0xFF))
    }

    /// The cache file holding the blocks of `file` (the part of a key before `#`).
    func path(_ file: String) -> String { "\(dir)/\(Self.subdir(file))/\(file)\(Self.suffix)" }

    func slotOffset(_ index: Int) -> Int64 { Int64(index) * slotSize }

    /// Bytes a block takes on disk: its header page and its data in whole pages.
    static func fileSize(dataLength: Int) -> Int64 { Int64(dataOffset + ((dataLength + 4095) & ~4095)) }

    private func rebuild() {
        var found: [(key: String, size: Int64, mtime: Int64, index: Int)] = []
        var unreadable: [String] = []
        for sub in POSIX.list(dir) {
            let subPath = "\(dir)/\(sub)"
            for name in POSIX.list(subPath) {
                let full = "\(subPath)/\(name)"
                guard name.hasSuffix(Self.suffix), let info = POSIX.fileSize(full) else {
                    unlink(full) // an older layout's block files, or something that is not ours
                    continue
                }
                let file = String(name.dropLast(Self.suffix.count))
                let slots = scan(full)
                if slots.isEmpty { unreadable.append(full) }
                for (index, length) in slots {
                    found.append(("\(file)#\(index)", Self.fileSize(dataLength: length), info.mtime, index))
                }
            }
        }
        for file in unreadable { unlink(file) }
        // Oldest file first; within a file, front to back.
        found.sort { ($0.mtime, $0.index) < ($1.mtime, $1.index) }
        var evict: [String] = []
        lru.withLock { lru in
            for item in found {
                lru.retain(Self.split(item.key).file)
                lru.insert(item.key, size: item.size)
            }
            while lru.used > capacity, let victim = lru.removeOldest() { evict.append(victim) }
        }
        for key in evict { release(key) }
        if !found.isEmpty {
            logger.info("block cache: \(found.count - evict.count) blocks (\(usedBytes) bytes) found in \(dir)")
        }
    }

    /// The valid slots of a cache file (index and data length). Slots holding data but no valid
    /// header (a write cut short by a crash, or another block size) are punched out.
    private func scan(_ path: String) -> [(Int, Int)] {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var slots: [(Int, Int)] = []
        var position = 0
        while true {
            let next = fdfs_seek_data(fd, position)
            guard next >= 0 else { break }
            let index = next / Int(slotSize)
            let start = Int(slotOffset(index))
            if let length = header(fd, at: Int64(start))?.length {
                slots.append((index, length))
            } else {
                _ = fdfs_punch_hole(fd, start, Int(slotSize))
            }
            position = start + Int(slotSize)
        }
        return slots
    }

    /// A slot's header: block length and chunk CRCs, or nil when it is not a valid one.
    private func header(_ fd: Int32, at offset: Int64) -> (length: Int, crcs: [UInt32])? {
        var head = [UInt32](repeating: 0, count: 5)
        guard head.withUnsafeMutableBytes({ POSIX.preadAll(fd, $0.baseAddress!, 20, offset) }) == 20,
              head[0] == Self.magic, head[2] == UInt32(Block.chunkSize), Int64(head[4]) == slotSize,
              Int(head[1]) <= blockSize,
              Int(head[3]) == (Int(head[1]) + Block.chunkSize - 1) / Block.chunkSize,
              20 + 4 * Int(head[3]) <= Self.dataOffset
        else { return nil }
        let chunkCount = Int(head[3])
        var crcs = [UInt32](repeating: 0, count: chunkCount)
        guard crcs.withUnsafeMutableBytes({ POSIX.preadAll(fd, $0.baseAddress!, 4 * chunkCount, offset + 20) }) == 4 * chunkCount else { return nil }
        return (Int(head[1]), crcs)
    }

    /// Accepts a block, evicting least recently used blocks first so that the cap is never
    /// exceeded; it is written to disk in the background and served from memory until then.
    /// A block larger than the whole cache, or one arriving while the writer is too far
    /// behind, is not stored. `written` runs once the block is on disk or was not admitted.
    @discardableResult
    public func admit(_ key: String, _ block: Block, written: @escaping @Sendable () -> Void = {}) -> Bool {
        let total = Self.fileSize(dataLength: block.length)
        var evicted: [String] = []
        // Room is reserved first (evicting as needed); the block is indexed only once its file
        // is complete, so a reader never finds an indexed block whose file is partial.
        let reserved = lru.withLock { lru -> Bool in
            guard total <= capacity, block.length <= blockSize, !lru.contains(key), lru.writing[key] == nil,
                  lru.backlog + block.length <= Self.maxBacklog else { return false }
            while lru.used + lru.pending + total > capacity, let victim = lru.removeOldest() { evicted.append(victim) }
            guard lru.used + lru.pending + total <= capacity else { return false }
            lru.pending += total
            lru.backlog += block.length
            lru.writing[key] = block
            lru.retain(Self.split(key).file)
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
    private func write(_ key: String, _ block: Block, total: Int64) {
        let ok = writeSlot(key, block)
        let keep = lru.withLock { lru -> Bool in
            lru.pending -= total
            lru.backlog -= block.length
            guard lru.writing[key] === block else { return false }
            lru.writing[key] = nil
            if ok { lru.insert(key, size: total) }
            return ok
        }
        // Dropped while it was being written, or the write failed: free the slot (and the
        // file, if nothing else lives there).
        if !keep { release(key) }
    }

    /// Data first, header last: a slot whose write was cut short has no valid header, so it is
    /// never indexed (and any page of it written out of order fails its chunk CRC).
    private func writeSlot(_ key: String, _ block: Block) -> Bool {
        let header = UnsafeMutableRawPointer.allocate(byteCount: Self.dataOffset, alignment: 4096)
        defer { header.deallocate() }
        header.initializeMemory(as: UInt8.self, repeating: 0, count: Self.dataOffset)
        let words = header.assumingMemoryBound(to: UInt32.self)
        words[0] = Self.magic
        words[1] = UInt32(block.length)
        words[2] = UInt32(Block.chunkSize)
        words[3] = UInt32(block.chunkCRCs.count)
        words[4] = UInt32(slotSize)
        for (index, crc) in block.chunkCRCs.enumerated() { words[5 + index] = crc }
        // Zero the padding of the last page (the buffer may hold another file's bytes there).
        let padded = (block.length + 4095) & ~4095
        guard padded <= block.storage.pageAlignedCapacity else { return false }
        (block.storage.pointer + block.length).initializeMemory(as: UInt8.self, repeating: 0, count: padded - block.length)

        let (file, index) = Self.split(key)
        let target = path(file)
        let fd = openForWrite(target, sub: "\(dir)/\(Self.subdir(file))")
        var ok = false
        if fd >= 0 {
            let start = slotOffset(index)
            ok = POSIX.pwriteAll(fd, block.storage.pointer, padded, start + Int64(Self.dataOffset))
                && POSIX.pwriteAll(fd, header, Self.dataOffset, start)
            if !ok { _ = fdfs_punch_hole(fd, Int(start), Int(slotSize)) }
            close(fd)
        }
        if !ok { logger.warning("block cache: cannot write \(key) to \(target): \(String(cString: strerror(errno)))") }
        return ok
    }

    /// Opens a cache file for writing, with O_DIRECT when the file system takes it.
    private func openForWrite(_ path: String, sub: String) -> Int32 {
        func attempt() -> Int32 {
            let flags = O_WRONLY | O_CREAT | O_CLOEXEC
            if directIO.load(ordering: .relaxed) {
                let fd = open(path, flags | fdfs_o_direct(), 0o600)
                if fd >= 0 || errno != EINVAL { return fd }
                logger.info("block cache: \(dir) does not take O_DIRECT; using buffered writes")
                directIO.store(false, ordering: .relaxed)
            }
            return open(path, flags, 0o600)
        }
        let fd = attempt()
        if fd < 0 && errno == ENOENT {
            mkdir(sub, 0o700)
            return attempt()
        }
        return fd
    }

    /// Frees the slot of a block no longer indexed (evicted or dropped), or the whole file when
    /// it was the file's last block; on the writer thread, after the writes queued before it.
    private func release(_ key: String) {
        let (file, index) = Self.split(key)
        // Queued under the lock, so it is ordered against the writes of later admissions.
        lru.withLock { lru in
            let last = lru.release(file)
            writer.async { self.discard(file, index: index, wholeFile: last) }
        }
    }

    private func discard(_ file: String, index: Int, wholeFile: Bool) {
        let target = path(file)
        if wholeFile {
            unlink(target)
            return
        }
        let fd = open(target, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fdfs_punch_hole(fd, Int(slotOffset(index)), Int(slotSize))
        close(fd)
    }

    public struct Hit: Sendable {
        /// Length of the whole block.
        public var blockLength: Int
        /// CRC32 of the whole block (from its verified chunk CRCs).
        public var blockCRC: UInt32
    }

    /// Copies `length` bytes at `offset` within the block into `destination`, after checking
    /// the CRC of every chunk they touch. A missing block gives nil; a corrupt one is dropped
    /// (and counted) and gives nil, so the caller fetches it again.
    public func read(_ key: String, offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> Hit? {
        let found = lru.withLock { lru -> (indexed: Bool, inMemory: Block?) in
            if let block = lru.writing[key] { return (false, block) }
            return (lru.touch(key), nil)
        }
        if let block = found.inMemory {
            guard offset >= 0, length >= 0, offset + length <= block.length else { return nil }
            destination.copyMemory(from: block.storage.pointer + offset, byteCount: length)
            return Hit(blockLength: block.length, blockCRC: block.crc32)
        }
        guard found.indexed else { return nil }
        return readFile(key, offset: offset, length: length, into: destination)
    }

    /// Reads a block from its slot: the header, then the 64 KiB chunks the request touches,
    /// each one checked against its CRC. Buffered reads: with the read-ahead above they measured
    /// faster than O_DIRECT here (1 GiB warm from disk: 0.95–1.29 s against 1.56–1.84 s).
    private func readFile(_ key: String, offset: Int, length: Int, into destination: UnsafeMutableRawPointer) -> Hit? {
        let (file, index) = Self.split(key)
        let fd = open(path(file), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if lru.withLock({ $0.remove(key) }) { release(key) }
            return nil
        }
        defer { close(fd) }
        let start = slotOffset(index)
        guard let (blockLength, crcs) = header(fd, at: start) else {
            drop(key, reason: "bad header")
            return nil
        }
        guard offset >= 0, length >= 0, offset + length <= blockLength else { return nil }
        if length > 0 {
            let firstChunk = offset / Block.chunkSize
            let lastChunk = (offset + length - 1) / Block.chunkSize
            let from = firstChunk * Block.chunkSize
            let to = min(blockLength, (lastChunk + 1) * Block.chunkSize)
            let span = to - from
            // Read straight into the destination when the request is chunk-aligned.
            let aligned = from == offset && to == offset + length
            let scratch = aligned ? nil : ByteStorage(capacity: span)
            let buffer = scratch?.pointer ?? destination
            guard POSIX.preadAll(fd, buffer, span, start + Int64(Self.dataOffset + from)) == span else {
                drop(key, reason: "short read")
                return nil
            }
            var position = 0
            for chunk in firstChunk...lastChunk {
                let size = min(Block.chunkSize, blockLength - chunk * Block.chunkSize)
                guard CRC32.checksum(UnsafeRawBufferPointer(start: buffer + position, count: size)) == crcs[chunk] else {
                    if drop(key, reason: "checksum mismatch in chunk \(chunk)") { metrics.add(metrics.cacheCorruptions) }
                    return nil
                }
                position += size
            }
            if !aligned { destination.copyMemory(from: buffer + (offset - from), byteCount: length) }
        }
        return Hit(blockLength: blockLength, blockCRC: Block.combine(crcs, length: blockLength))
    }

    /// Removes a block. False when it was not cached any more (evicted while it was being
    /// read, so its slot may already be a hole: nothing to report).
    @discardableResult
    public func drop(_ key: String, reason: String) -> Bool {
        let (indexed, pending) = lru.withLock { lru -> (Bool, Bool) in
            let pending = lru.writing.removeValue(forKey: key) != nil
            return (lru.remove(key), pending)
        }
        guard indexed || pending else { return false }
        logger.warning("block cache: dropping \(key): \(reason)")
        if indexed { release(key) }
        return true
    }

    /// Removes every block whose key starts with `prefix` (all blocks of one file).
    public func dropAll(prefix: String) {
        let keys = lru.withLock { lru -> [String] in
            let matching = lru.keys.filter { $0.hasPrefix(prefix) }
            for key in matching { _ = lru.remove(key) }
            for key in lru.writing.keys where key.hasPrefix(prefix) { lru.writing[key] = nil }
            return matching
        }
        for key in keys { release(key) }
    }
}

/// Least-recently-used order with O(1) insert, touch and removal.
struct LRU {
    private var index: [String: Int] = [:]
    private var keysByNode: [String] = []
    private var sizes: [Int64] = []
    private var prev: [Int] = []
    private var next: [Int] = []
    private var free: [Int] = []
    private var head = -1 // most recent
    private var tail = -1 // least recent
    private(set) var used: Int64 = 0
    /// Bytes reserved for blocks being written (not indexed yet).
    var pending: Int64 = 0
    /// Blocks waiting for the writer (served from memory meanwhile), and their data bytes.
    var writing: [String: Block] = [:]
    var backlog = 0
    /// Blocks (indexed or being written) per cache file, so a file goes with its last block.
    private var blocksPerFile: [String: Int] = [:]

    mutating func retain(_ file: String) { blocksPerFile[file, default: 0] += 1 }

    /// Counts one block of `file` gone; true when it was the last.
    mutating func release(_ file: String) -> Bool {
        let left = (blocksPerFile[file] ?? 1) - 1
        blocksPerFile[file] = left > 0 ? left : nil
        return left <= 0
    }

    var count: Int { index.count }
    var keys: Dictionary<String, Int>.Keys { index.keys }

    func contains(_ key: String) -> Bool { index[key] != nil }

    mutating func insert(_ key: String, size: Int64) {
        if index[key] != nil { _ = remove(key) }
        let node: Int
        if let reuse = free.popLast() {
            node = reuse
            keysByNode[node] = key
            sizes[node] = size
        } else {
            node = keysByNode.count
            keysByNode.append(key)
            sizes.append(size)
            prev.append(-1)
            next.append(-1)
        }
        index[key] = node
        used += size
        pushFront(node)
    }

    /// Marks a key as just used; false when absent.
    mutating func touch(_ key: String) -> Bool {
        guard let node = index[key] else { return false }
        unlink(node)
        pushFront(node)
        return true
    }

    mutating func remove(_ key: String) -> Bool {
        guard let node = index.removeValue(forKey: key) else { return false }
        unlink(node)
        used -= sizes[node]
        keysByNode[node] = ""
        free.append(node)
        return true
    }

    mutating func removeOldest() -> String? {
        guard tail >= 0 else { return nil }
        let key = keysByNode[tail]
        _ = remove(key)
        return key
    }

    private mutating func pushFront(_ node: Int) {
        prev[node] = -1
        next[node] = head
        if head >= 0 { prev[head] = node }
        head = node
        if tail < 0 { tail = node }
    }

    private mutating func unlink(_ node: Int) {
        let p = prev[node], n = next[node]
        if p >= 0 { next[p] = n } else { head = n }
        if n >= 0 { prev[n] = p } else { tail = p }
        prev[node] = -1
        next[node] = -1
    }
}
