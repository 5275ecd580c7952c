import FDFSClient
import FDFSMount
import FDFSProtocol
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The read path without the file system: a ``FileReader`` per handle over a shared
/// ``BlockStore`` (disk cache and fetches) and the in-memory cluster.
@Suite struct ReaderTests {
    static let blockSize = 64 << 10

    struct Parts {
        let cache: BlockCache
        let store: BlockStore
        let metrics: MountMetrics

        func reader(_ ref: FileRef, maxWindow: Int64 = 256 << 10, mayStream: Bool = true) -> FileReader {
            FileReader(ref: ref, store: store, maxWindow: maxWindow, metrics: metrics, logger: quiet, mayStream: mayStream)
        }
    }

    func parts(_ dir: TempDir, _ cluster: MemoryCluster, stallTimeout: Double = 5, mode: CacheMode = .reread, capacity: Int64 = 8 << 20, smallFile: Int64 = 16 << 20,
               splicesStreams: Bool = true, streamIdleLimit: Duration = .seconds(20)) throws -> Parts {
        let metrics = MountMetrics()
        let cache = try BlockCache(dir: dir.path + "/cache", capacity: capacity, blockSize: Self.blockSize, metrics: metrics, logger: quiet)
        dir.beforeRemoval { cache.flush() }
        let fetcher = BlockFetcher(cluster: cluster, metrics: metrics, logger: quiet, stallTimeout: stallTimeout, streamIdleLimit: streamIdleLimit)
        let store = BlockStore(cache: cache, fetcher: fetcher, budget: MemoryBudget(limit: 4 << 20), metrics: metrics, logger: quiet, blockSize: Self.blockSize, mode: mode, smallFile: smallFile,
                               splicesStreams: splicesStreams)
        return Parts(cache: cache, store: store, metrics: metrics)
    }

    /// One READ, finishing it when some blocks had to be fetched.
    /// `splice`: a span is read back from its descriptor, and a streamed READ from its pipe, as
    /// the kernel would splice them.
    func read(_ reader: FileReader, offset: Int64, size: Int, splice: Bool = false) async throws -> (bytes: [UInt8], synchronous: Bool) {
        switch try reader.read(offset: offset, size: size, splice: splice) {
        case let .done(result): return (Array(result.bytes), true)
        case let .pending(pending): return (Array(try await reader.complete(pending).bytes), false)
        case let .spliced(span):
            var bytes = [UInt8](repeating: 0, count: span.count)
            let n = bytes.withUnsafeMutableBytes { pread(span.fd, $0.baseAddress, span.count, off_t(span.offset)) }
            return (Array(bytes.prefix(max(0, n))), true)
        case let .streamed(stream):
            let delivered = Delivered()
            if let fellBack = try await reader.deliver(stream, reply: { delivered.take($0) }) { return (Array(fellBack.bytes), false) }
            return (delivered.bytes, false)
        }
    }

    func readAll(_ reader: FileReader, chunk: Int = 100_000, splice: Bool = false) async throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let bytes = try await read(reader, offset: Int64(out.count), size: chunk, splice: splice).bytes
            if bytes.isEmpty { return out }
            out += bytes
        }
    }

    @Test func theWindowGrowsWhileReadsFollowEachOtherAndResetsOnASeek() {
        var ahead = ReadAhead(blockSize: 1 << 20, maxWindow: 4 << 20)
        let size: Int64 = 100 << 20
        #expect(ahead.pattern == .unread)
        // A first read not at the start is not sequential.
        var late = ReadAhead(blockSize: 1 << 20, maxWindow: 4 << 20)
        #expect(late.record(offset: 5 << 20, length: 4096, fileSize: size).isEmpty)
        #expect(late.pattern == .random(end: (5 << 20) + 4096))
        // From the start: 2 blocks, then doubling up to the cap, issuing only what is new.
        #expect(ahead.record(offset: 0, length: 1 << 20, fileSize: size) == 1..<3)
        #expect(ahead.pattern == .sequential(end: 1 << 20, window: 2 << 20, issuedUpTo: 3 << 20))
        #expect(ahead.record(offset: 1 << 20, length: 1 << 20, fileSize: size) == 3..<6)
        #expect(ahead.record(offset: 2 << 20, length: 1 << 20, fileSize: size) == 6..<7)
        #expect(ahead.window == 4 << 20, "capped at maxWindow")
        // A read a little behind (the kernel's read-ahead out of order) keeps the run.
        #expect(ahead.record(offset: (2 << 20) + 4096, length: 4096, fileSize: size).isEmpty)
        #expect(ahead.window == 4 << 20)
        // A seek resets: no read-ahead, window 0.
        #expect(ahead.record(offset: 50 << 20, length: 1 << 20, fileSize: size).isEmpty)
        #expect(ahead.pattern == .random(end: 51 << 20))
        #expect(ahead.window == 0)
        // Reading on from there starts a new run with a small window, issued from there.
        #expect(ahead.record(offset: 51 << 20, length: 1 << 20, fileSize: size) == 52..<54)
        #expect(ahead.pattern == .sequential(end: 52 << 20, window: 2 << 20, issuedUpTo: 54 << 20))
    }

    @Test func theWholeFileCheckCollectsBlocksThenDecidesOnce() {
        let bytes = randomBytes(150_000)
        let cluster = MemoryCluster()
        let id = cluster.put(bytes)
        let ref = FileRef(id: id, size: Int64(bytes.count))
        let blockCRCs = (0..<3).map { i in CRC32.checksum(Array(bytes[i * Self.blockSize..<min(bytes.count, (i + 1) * Self.blockSize)])) }
        var check = WholeFileCheck(ref)
        #expect(check == .collecting([:]))
        #expect(check.record([0: blockCRCs[0]], of: ref, blockSize: Self.blockSize) == .incomplete)
        #expect(check.record([0: blockCRCs[0], 2: blockCRCs[2]], of: ref, blockSize: Self.blockSize) == .incomplete)
        #expect(check == .collecting([0: blockCRCs[0], 2: blockCRCs[2]]))
        #expect(check.record([1: blockCRCs[1]], of: ref, blockSize: Self.blockSize) == .passed)
        #expect(check == .done)
        // Decided once: later reads are not checked again.
        #expect(check.record([1: 0], of: ref, blockSize: Self.blockSize) == .incomplete)
        // A wrong block fails it.
        var bad = WholeFileCheck(ref)
        #expect(bad.record([0: blockCRCs[0], 1: blockCRCs[1] ^ 1, 2: blockCRCs[2]], of: ref, blockSize: Self.blockSize) != .passed)
        #expect(bad == .done)
        // Appender files carry no content CRC: never checked.
        var appender = FileRef(id: id, size: Int64(bytes.count), version: "150000-1")
        appender.checkCRC = false
        var off = WholeFileCheck(appender)
        #expect(off == .off)
        #expect(off.record([0: 1, 1: 2, 2: 3], of: appender, blockSize: Self.blockSize) == .incomplete)
    }

    @Test func blockKeysSurviveTheTripThroughCacheFileNames() throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let id = cluster.put(randomBytes(10), appender: true)
        let file = FileVersion(id, version: "1000-1700000000")
        #expect(file.id == id.description)
        let cache = try BlockCache(dir: dir.path, capacity: 4 << 20, blockSize: Self.blockSize, metrics: MountMetrics(), logger: quiet)
        let name = String(cache.path(file).split(separator: "/").last!)
        #expect(!name.dropLast(".blocks".count).contains("/"))
        #expect(BlockCache.file(cacheFileName: name) == file)
        #expect(BlockCache.file(cacheFileName: name)?.id == id.description)
        #expect(BlockCache.file(cacheFileName: name)?.version == "1000-1700000000")
        #expect(BlockCache.file(cacheFileName: "old#0.blk") == nil)
        #expect(BlockCache.file(cacheFileName: "no-version.blocks") == nil)
        // Versions of one ID share the prefix of their names; other IDs do not.
        #expect(file.diskName.hasPrefix(FileRef.keyPrefix(id)))
        #expect(!FileVersion(cluster.put(randomBytes(10)), version: "0").diskName.hasPrefix(FileRef.keyPrefix(id)))
        // Blocks admitted under typed keys come back under the same keys after a reopen.
        let storage = ByteStorage(capacity: 1000)
        storage.count = 1000
        for index in [0, 3] { #expect(cache.admit(BlockKey(file, index), Block(storage: storage, chunkCRCs: Block.checksums(storage)))) }
        cache.flush()
        let reopened = try BlockCache(dir: dir.path, capacity: 4 << 20, blockSize: Self.blockSize, metrics: MountMetrics(), logger: quiet)
        #expect(reopened.blockCount == 2)
        #expect(reopened.contains(BlockKey(file, 0)) && reopened.contains(BlockKey(file, 3)))
        #expect(!reopened.contains(BlockKey(file, 1)))
        #expect(!reopened.contains(BlockKey(FileVersion(id, version: "0"), 0)))
    }

    @Test func cachedBlocksAreAnsweredSynchronouslyAndFetchesAreShared() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(500_000)
        let id = cluster.put(content)
        let parts = try parts(dir, cluster)
        let ref = FileRef(id: id, size: Int64(content.count))
        let first = parts.reader(ref)
        #expect(try await readAll(first) == content)
        #expect(first.check == .done)
        let reads = cluster.count("read")
        #expect(reads == 8, "one fetch per block, read-ahead and demand never both")
        // A second handle finds every block cached: each READ is answered without waiting.
        let second = parts.reader(ref)
        var offset: Int64 = 0
        while offset < ref.size {
            let (bytes, synchronous) = try await read(second, offset: offset, size: 100_000)
            #expect(synchronous)
            #expect(bytes[...] == content[Int(offset)..<Int(offset) + bytes.count])
            offset += Int64(bytes.count)
        }
        #expect(cluster.count("read") == reads)
        #expect(second.check == .done)
    }

    @Test func theWholeFileCheckCatchesACorruptedBlock() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(300_000)
        let id = cluster.put(content)
        let parts = try parts(dir, cluster)
        let ref = FileRef(id: id, size: Int64(content.count))
        // Block 2 is in the cache with wrong bytes whose chunk CRCs match them (as if the
        // storage had sent them so): only the whole-file CRC can tell.
        var wrong = Array(content[2 * Self.blockSize..<3 * Self.blockSize])
        wrong[100] ^= 0x01
        let storage = ByteStorage(capacity: wrong.count)
        wrong.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: wrong.count) }
        storage.count = wrong.count
        #expect(parts.cache.admit(ref.key(2), Block(storage: storage, chunkCRCs: Block.checksums(storage))))
        parts.cache.flush()
        let reader = parts.reader(ref)
        #expect(await errno { _ = try await readAll(reader) } == EIO)
        #expect(reader.check == .done)
        #expect(parts.metrics.crcMismatches.load() == 1)
        parts.cache.flush()
        #expect(!parts.cache.contains(ref.key(2)), "the file's cached blocks are dropped")
        // The next open reads the blocks again from the cluster, and they pass.
        let again = parts.reader(ref)
        #expect(try await readAll(again) == content)
        #expect(parts.metrics.crcMismatches.load() == 1)
    }

    @Test func aFailingStorageIsReplacedByAnother() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(400_000)
        let id = cluster.put(content)
        cluster.state.withLock { $0.failFirstReplica = true }
        let parts = try parts(dir, cluster)
        let reader = parts.reader(FileRef(id: id, size: Int64(content.count)))
        #expect(try await readAll(reader) == content)
        #expect(parts.metrics.failovers.load() > 0)
        #expect(reader.check == .done)
    }
}
