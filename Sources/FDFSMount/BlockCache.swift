import FDFSProtocol
import Logging
import Synchronization

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
            crcs.append(FastCRC32.checksum(UnsafeRawBufferPointer(start: storage.pointer + offset, count: size)))
            offset += size
        }
        return crcs
    }
}

/// The on-disk block cache: one file per block under `dir/XX/`, a header with the chunk CRCs,
/// a hard byte cap enforced when a block is admitted (LRU eviction makes room first), and an
/// index rebuilt from the directory at start, so the cache survives a remount.
public final class BlockCache: Sendable {
    static let magic: UInt32 = 0x3142_4446 // "FDB1"

    public let dir: String
    public let capacity: Int64
    let metrics: MountMetrics
    let logger: Logger
    private let lru: Mutex<LRU>

    public init(dir: String, capacity: Int64, metrics: MountMetrics, logger: Logger) throws(FSError) {
        self.dir = dir
        self.capacity = capacity
        self.metrics = metrics
        self.logger = logger
        self.lru = Mutex(LRU())
        try POSIX.mkdirs(dir)
        rebuild()
    }

    /// Bytes in the cache (block files, headers included).
    public var usedBytes: Int64 { lru.withLock { $0.used + $0.pending } }
    public var blockCount: Int { lru.withLock { $0.count } }

    public func contains(_ key: String) -> Bool { lru.withLock { $0.contains(key) } }

    static func subdir(_ key: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in key.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return FileID.hex(UInt8(hash & 0xFF))
    }

    func path(_ key: String) -> String { "\(dir)/\(Self.subdir(key))/\(key).blk" }

    private func rebuild() {
        var found: [(key: String, size: Int64, mtime: Int64)] = []
        for sub in POSIX.list(dir) {
            let subPath = "\(dir)/\(sub)"
            for name in POSIX.list(subPath) {
                let full = "\(subPath)/\(name)"
                guard name.hasSuffix(".blk"), let info = POSIX.fileSize(full) else {
                    unlink(full) // temp files of a crashed write
                    continue
                }
                found.append((String(name.dropLast(4)), info.size, info.mtime))
            }
        }
        found.sort { $0.mtime < $1.mtime }
        var evict: [String] = []
        lru.withLock { lru in
            for item in found { lru.insert(item.key, size: item.size) }
            while lru.used > capacity, let victim = lru.removeOldest() { evict.append(victim) }
        }
        for key in evict { unlink(path(key)) }
        if !found.isEmpty {
            logger.info("block cache: \(found.count - evict.count) blocks (\(usedBytes) bytes) found in \(dir)")
        }
    }

    /// Stores a block, evicting least recently used blocks first so that the cap is never
    /// exceeded. A block larger than the whole cache is not stored.
    @discardableResult
    public func admit(_ key: String, _ block: Block) -> Bool {
        let headerSize = 16 + 4 * block.chunkCRCs.count
        let total = Int64(headerSize + block.length)
        var evicted: [String] = []
        // Room is reserved first (evicting as needed), the file written, and only then the
        // block indexed: a reader never finds an indexed block whose file is not complete.
        let reserved = lru.withLock { lru -> Bool in
            guard total <= capacity, !lru.contains(key), !lru.pendingKeys.contains(key) else { return false }
            while lru.used + lru.pending + total > capacity, let victim = lru.removeOldest() { evicted.append(victim) }
            guard lru.used + lru.pending + total <= capacity else { return false }
            lru.pending += total
            lru.pendingKeys.insert(key)
            return true
        }
        for victim in evicted { unlink(path(victim)) }
        metrics.add(metrics.cacheEvictions, Int64(evicted.count))
        guard reserved else { return false }
        var header = [UInt32](repeating: 0, count: 4 + block.chunkCRCs.count)
        header[0] = Self.magic
        header[1] = UInt32(block.length)
        header[2] = UInt32(Block.chunkSize)
        header[3] = UInt32(block.chunkCRCs.count)
        for (index, crc) in block.chunkCRCs.enumerated() { header[4 + index] = crc }
        let final = path(key)
        let temp = final + ".tmp"
        var ok = false
        let sub = "\(dir)/\(Self.subdir(key))"
        var fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            mkdir(sub, 0o700)
            fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        }
        if fd >= 0 {
            ok = header.withUnsafeBytes { POSIX.pwriteAll(fd, $0.baseAddress!, $0.count, 0) }
                && POSIX.pwriteAll(fd, block.storage.pointer, block.length, Int64(headerSize))
            close(fd)
            ok = ok && rename(temp, final) == 0
        }
        if !ok {
            logger.warning("block cache: cannot write \(final): \(String(cString: strerror(errno)))")
            unlink(temp)
        }
        lru.withLock { lru in
            lru.pending -= total
            lru.pendingKeys.remove(key)
            if ok { lru.insert(key, size: total) }
        }
        return ok
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
        guard lru.withLock({ $0.touch(key) }) else { return nil }
        let file = path(key)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            lru.withLock { _ = $0.remove(key) }
            return nil
        }
        defer { close(fd) }
        var head = [UInt32](repeating: 0, count: 4)
        guard head.withUnsafeMutableBytes({ POSIX.preadAll(fd, $0.baseAddress!, 16, 0) }) == 16,
              head[0] == Self.magic, head[2] == UInt32(Block.chunkSize), Int(head[3]) == (Int(head[1]) + Block.chunkSize - 1) / Block.chunkSize
        else {
            drop(key, reason: "bad header")
            return nil
        }
        let blockLength = Int(head[1])
        let chunkCount = Int(head[3])
        var crcs = [UInt32](repeating: 0, count: chunkCount)
        guard crcs.withUnsafeMutableBytes({ POSIX.preadAll(fd, $0.baseAddress!, 4 * chunkCount, 16) }) == 4 * chunkCount,
              offset >= 0, length >= 0, offset + length <= blockLength
        else {
            drop(key, reason: "truncated header")
            return nil
        }
        let headerSize = 16 + 4 * chunkCount
        if length > 0 {
            let firstChunk = offset / Block.chunkSize
            let lastChunk = (offset + length - 1) / Block.chunkSize
            let start = firstChunk * Block.chunkSize
            let end = min(blockLength, (lastChunk + 1) * Block.chunkSize)
            let span = end - start
            // Read straight into the destination when the request is chunk-aligned.
            let aligned = start == offset && end == offset + length
            let buffer = aligned ? destination : UnsafeMutableRawPointer.allocate(byteCount: span, alignment: 16)
            defer { if !aligned { buffer.deallocate() } }
            guard POSIX.preadAll(fd, buffer, span, Int64(headerSize + start)) == span else {
                drop(key, reason: "short read")
                return nil
            }
            var position = 0
            for chunk in firstChunk...lastChunk {
                let size = min(Block.chunkSize, blockLength - chunk * Block.chunkSize)
                guard FastCRC32.checksum(UnsafeRawBufferPointer(start: buffer + position, count: size)) == crcs[chunk] else {
                    drop(key, reason: "checksum mismatch in chunk \(chunk)")
                    metrics.add(metrics.cacheCorruptions)
                    return nil
                }
                position += size
            }
            if !aligned { destination.copyMemory(from: buffer + (offset - start), byteCount: length) }
        }
        return Hit(blockLength: blockLength, blockCRC: Block.combine(crcs, length: blockLength))
    }

    /// Removes a block.
    public func drop(_ key: String, reason: String) {
        logger.warning("block cache: dropping \(key): \(reason)")
        lru.withLock { _ = $0.remove(key) }
        unlink(path(key))
    }

    /// Removes every block whose key starts with `prefix` (all blocks of one file).
    public func dropAll(prefix: String) {
        let keys = lru.withLock { lru -> [String] in
            let matching = lru.keys.filter { $0.hasPrefix(prefix) }
            for key in matching { _ = lru.remove(key) }
            return matching
        }
        for key in keys { unlink(path(key)) }
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
    var pendingKeys: Set<String> = []

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
