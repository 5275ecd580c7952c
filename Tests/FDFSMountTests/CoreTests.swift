import FDFSClient
import FDFSMount
import FDFSProtocol
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

let quiet: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}()

func makeFS(_ dir: TempDir, _ cluster: MemoryCluster, configure: (inout MountOptions) -> Void = { _ in }) async throws -> FDFSFileSystem {
    var options = MountOptions()
    options.blockSize = 64 << 10
    options.cacheSize = 4 << 20
    options.readahead = 256 << 10
    options.meta = try TestMetadata.location(for: dir.path)
    configure(&options)
    let fs = try FDFSFileSystem(options: options, cluster: cluster, stateDir: dir.path + "/state", logger: quiet)
    await fs.start()
    dir.beforeRemoval {
        fs.stop()
        fs.cache.flush()
    }
    return fs
}

/// Resolves a path from the root by LOOKUPs.
func resolve(_ fs: FDFSFileSystem, _ path: String) async throws -> EntryReply {
    var reply = try fs.getattr(MappingStore.rootIno)
    for part in path.split(separator: "/") {
        reply = try await fs.lookup(parent: reply.attributes.ino, name: String(part)).value
    }
    return reply
}

func readAll(_ fs: FDFSFileSystem, _ ino: UInt64, chunk: Int = 100_000) async throws -> [UInt8] {
    let open = try await fs.open(ino, flags: O_RDONLY)
    var out: [UInt8] = []
    while true {
        let storage = try await fs.read(open.handle, offset: Int64(out.count), size: chunk)
        if storage.count == 0 { break }
        out += Array(storage.bytes)
    }
    try await fs.release(ino, handle: open.handle).value
    return out
}

/// Creates `name` in `parent`, writes `bytes`, closes (flush + release).
@discardableResult
func writeFile(_ fs: FDFSFileSystem, parent: UInt64, _ name: String, _ bytes: [UInt8]) async throws -> UInt64 {
    let (entry, open) = try await fs.create(parent: parent, name: name, mode: 0o644, flags: O_WRONLY | O_CREAT, caller: .root).value
    var offset = 0
    while offset < bytes.count {
        let n = min(40_000, bytes.count - offset)
        _ = try bytes[offset..<offset + n].withUnsafeBytes { try fs.write(open.handle, offset: Int64(offset), bytes: $0) }
        offset += n
    }
    do {
        try await fs.flush(entry.attributes.ino, handle: open.handle).value
    } catch {
        // close() reports the error; the kernel still releases the file.
        try await fs.release(entry.attributes.ino, handle: open.handle).value
        throw error
    }
    try await fs.release(entry.attributes.ino, handle: open.handle).value
    return entry.attributes.ino
}

func errno(of body: () async throws -> Void) async -> Int32? {
    do { try await body() } catch let error as FSError { return error.errno } catch { return -1 }
    return nil
}

@Suite struct BlockCacheTests {
    /// Block `index` of a test file named `name` (version "0").
    func key(_ name: String, _ index: Int = 0) -> BlockKey { BlockKey(FileVersion(id: name, version: "0"), index) }

    func block(_ bytes: [UInt8]) -> Block {
        let storage = ByteStorage(capacity: bytes.count)
        bytes.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        storage.count = bytes.count
        return Block(storage: storage, chunkCRCs: Block.checksums(storage))
    }

    @Test func capIsNeverExceededAndLRUEvictsOldest() throws {
        let dir = TempDir()
        let metrics = MountMetrics()
        let cache = try BlockCache(dir: dir.path, capacity: 1_000_000, metrics: metrics, logger: quiet)
        for i in 0..<5 {
            #expect(cache.admit(key("k\(i)"), block(randomBytes(200_000))))
            cache.flush()
        }
        #expect(cache.usedBytes <= 1_000_000)
        // k0 was evicted to make room for k4; touching k1 protects it from the next eviction.
        #expect(!cache.contains(key("k0")))
        var sink = [UInt8](repeating: 0, count: 10)
        #expect(cache.read(key("k1"), offset: 0, length: 10, into: &sink) != nil)
        #expect(cache.admit(key("k5"), block(randomBytes(200_000))))
        cache.flush()
        #expect(cache.contains(key("k1")))
        #expect(!cache.contains(key("k2")))
        #expect(cache.usedBytes <= 1_000_000)
        #expect(metrics.cacheEvictions.load() == 2)
        // A block larger than the whole cache is refused, not stored over the cap.
        #expect(!cache.admit(key("huge"), block(randomBytes(1_100_000))))
        #expect(cache.usedBytes <= 1_000_000)
    }

    @Test func corruptBlockIsDroppedNotServed() throws {
        let dir = TempDir()
        let metrics = MountMetrics()
        let cache = try BlockCache(dir: dir.path, capacity: 10_000_000, metrics: metrics, logger: quiet)
        let bytes = randomBytes(300_000)
        #expect(cache.admit(key("f", 0), block(bytes)))
        cache.flush()
        // Flip one byte inside the data on disk (slot 0: a 4 KiB header page, then the data).
        let file = cache.path(key("f", 0).file)
        let handle = FileHandle(forUpdatingAtPath: file)!
        try handle.seek(toOffset: 4096 + 200_000)
        let original = try handle.read(upToCount: 1)!
        try handle.seek(toOffset: 4096 + 200_000)
        handle.write(Data([original[0] ^ 0x55]))
        try handle.close()
        var out = [UInt8](repeating: 0, count: 300_000)
        // A read of an untouched chunk still works; one touching the bad chunk drops the block.
        #expect(cache.read(key("f", 0), offset: 0, length: 1000, into: &out) != nil)
        #expect(cache.read(key("f", 0), offset: 0, length: 300_000, into: &out) == nil)
        #expect(!cache.contains(key("f", 0)))
        #expect(metrics.cacheCorruptions.load() == 1)
    }

    @Test func blocksOfOneFileShareASlotFileAndEvictionFreesTheirSpace() throws {
        let dir = TempDir()
        func files() -> [String] {
            (try? FileManager.default.subpathsOfDirectory(atPath: dir.path))?.filter { $0.hasSuffix(".blocks") }.sorted() ?? []
        }
        func diskBytes(_ relative: String) -> Int {
            var info = stat()
            return stat("\(dir.path)/\(relative)", &info) == 0 ? Int(info.st_blocks) * 512 : -1
        }
        // An older layout's block file is removed at start.
        try FileManager.default.createDirectory(atPath: "\(dir.path)/ab", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(dir.path)/ab/old#0.blk", contents: Data(count: 10))
        let slot = 4096 + 256 * 1024
        let cache = try BlockCache(dir: dir.path, capacity: Int64(3 * slot), blockSize: 256 * 1024, metrics: MountMetrics(), logger: quiet)
        #expect(files().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/ab/old#0.blk"))
        for index in 0..<3 { #expect(cache.admit(key("a", index), block(randomBytes(256 * 1024)))) }
        cache.flush()
        #expect(files().count == 1)
        let a = files()[0]
        #expect(diskBytes(a) == 3 * slot)
        // b#0 evicts a#0: its slot becomes a hole again.
        #expect(cache.admit(key("b", 0), block(randomBytes(100_000))))
        cache.flush()
        #expect(files().count == 2)
        #expect(diskBytes(a) == 2 * slot)
        var out = [UInt8](repeating: 0, count: 10)
        #expect(cache.read(key("a", 0), offset: 0, length: 10, into: &out) == nil)
        #expect(cache.read(key("a", 2), offset: 0, length: 10, into: &out) != nil)
        // Dropping the file's last blocks removes the file.
        cache.dropAll(prefix: "a")
        cache.flush()
        #expect(files().count == 1)
        // A block larger than a slot is not admitted.
        #expect(!cache.admit(key("c", 0), block(randomBytes(256 * 1024 + 1))))
        // Reopened with another block size, the slots do not line up: the cache starts empty.
        let other = try BlockCache(dir: dir.path, capacity: 10_000_000, blockSize: 512 * 1024, metrics: MountMetrics(), logger: quiet)
        #expect(other.blockCount == 0)
        #expect(files().isEmpty)
    }

    @Test func buffersComeInPowerOfTwoClassesUpToTheLargestBlock() {
        // Pooled buffers are whole size classes; larger ones are their own whole pages.
        let expected = [1: 1 << 20, 1 << 20: 1 << 20, (1 << 20) + 1: 2 << 20, 3 << 20: 4 << 20, 16 << 20: 16 << 20, (16 << 20) + 1: (16 << 20) + 4096]
        for (capacity, usable) in expected {
            let storage = ByteStorage(capacity: capacity)
            #expect(storage.pageAlignedCapacity == usable, "capacity \(capacity)")
            storage.pointer.storeBytes(of: 0xFF, toByteOffset: usable - 1, as: UInt8.self)
        }
    }

    @Test func idleBuffersAreReusedUpToTheLimitAndTrimmedOnceReadsStop() {
        let pool = BufferPool(idleLimit: 4 << 20, restingLimit: 1 << 20)
        let buffers = (0..<6).map { _ in pool.take(1 << 20) }
        #expect(pool.mapped.load() == 6)
        for buffer in buffers { pool.give(buffer, size: 1 << 20) }
        #expect(pool.idleBytes == 4 << 20, "beyond the idle limit buffers are unmapped")
        // Taking them again maps nothing new.
        let again = (0..<4).map { _ in pool.take(1 << 20) }
        #expect(pool.mapped.load() == 6)
        for buffer in again { pool.give(buffer, size: 1 << 20) }
        // Within the quiet period nothing is trimmed; after it, all but the resting limit.
        pool.trim(now: .now)
        #expect(pool.idleBytes == 4 << 20)
        pool.trim(now: .now + BufferPool.quietPeriod)
        #expect(pool.idleBytes == 1 << 20)
        let reused = pool.take(1 << 20)
        #expect(reused == again.first, "the resting buffer is the one reused next")
        pool.give(reused, size: 1 << 20)
    }

    @Test func cacheSurvivesReopen() throws {
        let dir = TempDir()
        let bytes = randomBytes(150_000)
        do {
            let cache = try BlockCache(dir: dir.path, capacity: 10_000_000, metrics: MountMetrics(), logger: quiet)
            #expect(cache.admit(key("a", 0), block(bytes)))
            #expect(cache.admit(key("a", 1), block(bytes)))
            cache.flush()
        }
        let reopened = try BlockCache(dir: dir.path, capacity: 10_000_000, metrics: MountMetrics(), logger: quiet)
        #expect(reopened.blockCount == 2)
        var out = [UInt8](repeating: 0, count: 150_000)
        let hit = reopened.read(key("a", 1), offset: 0, length: 150_000, into: &out)
        #expect(hit?.blockCRC == CRC32.checksum(bytes))
        #expect(out == bytes)
        // Reopening with a smaller cap evicts down to it.
        let small = try BlockCache(dir: dir.path, capacity: 200_000, metrics: MountMetrics(), logger: quiet)
        #expect(small.blockCount == 1)
        #expect(small.usedBytes <= 200_000)
    }
}

@Suite struct ReadAheadTests {
    @Test func sequentialReadsGrowTheWindowAndRandomReadsReset() {
        var ra = ReadAhead(blockSize: 1 << 20, maxWindow: 8 << 20)
        let size: Int64 = 100 << 20
        let first = ra.record(offset: 0, length: 1 << 20, fileSize: size)
        #expect(first == 1..<3)
        #expect(ra.window == 2 << 20)
        let second = ra.record(offset: 1 << 20, length: 1 << 20, fileSize: size)
        #expect(ra.window == 4 << 20)
        #expect(second == 3..<6)
        _ = ra.record(offset: 2 << 20, length: 1 << 20, fileSize: size)
        _ = ra.record(offset: 3 << 20, length: 1 << 20, fileSize: size)
        #expect(ra.window == 8 << 20)
        // A jump far away is random access: no read-ahead.
        #expect(ra.record(offset: 50 << 20, length: 4096, fileSize: size).isEmpty)
        #expect(ra.window == 0)
        // Never beyond the end of the file.
        var tail = ReadAhead(blockSize: 1 << 20, maxWindow: 8 << 20)
        #expect(tail.record(offset: 0, length: 1 << 20, fileSize: (3 << 20) / 2) == 1..<2)
    }
}

@Suite struct NamespaceTests {
    @Test func layoutComesFromTheTracker() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let root = try await fs.opendir(MappingStore.rootIno).value
        #expect(try fs.readdir(root, offset: 0).map(\.name) == [".", "..", "group1"])
        let group = try await resolve(fs, "group1")
        let list = try await fs.opendir(group.attributes.ino).value
        #expect(try fs.readdir(list, offset: 2).map(\.name) == ["M00", "M01"])
        let sub = try await resolve(fs, "group1/M01")
        let subs = try await fs.opendir(sub.attributes.ino).value
        #expect(try fs.readdir(subs, offset: 2).count == 256)
        #expect(await errno { _ = try await resolve(fs, "group1/M02") } == ENOENT)
        #expect(await errno { _ = try await resolve(fs, "group2") } == ENOENT)
    }

    @Test func generatedNamesAreFoundAndHostileNamesAreNot() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(200_000)
        let id = cluster.put(content)
        let fs = try await makeFS(dir, cluster)
        let reply = try await resolve(fs, id.description)
        #expect(reply.attributes.size == 200_000)
        #expect(reply.attributes.mtime == Int64(id.generated.timestamp) * 1_000_000_000)
        #expect(try await readAll(fs, reply.attributes.ino) == content)
        let hh = id.description.split(separator: "/").dropLast().joined(separator: "/")
        for hostile in ["..", "...", "../../../../etc/passwd", String(repeating: "A", count: 300), "x\u{1}y", id.name + "x",
                        String(id.name.dropLast()), id.name.replacingOccurrences(of: "A", with: "@"), "wKgz6lnduTeAMdrcAAEoRmXZPp8\n.jpg"] {
            let code = await errno { _ = try await resolve(fs, hh + "/" + hostile) }
            #expect(code == ENOENT || code == ENAMETOOLONG, "\(hostile) gave \(String(describing: code))")
        }
        #expect(throws: FSError.self) { _ = try FDFSFileSystem.validName([0x66, 0xFF, 0xFE]) }
        // A deleted file: ENOENT, remembered briefly without asking again.
        let gone = cluster.put([1, 2, 3])
        try await cluster.delete(gone)
        let before = cluster.count("fileInfo")
        #expect(await errno { _ = try await resolve(fs, gone.description) } == ENOENT)
        #expect(await errno { _ = try await resolve(fs, gone.description) } == ENOENT)
        #expect(cluster.count("fileInfo") == before + 1)
    }

    @Test func generatedNamesAreReadOnly() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let id = cluster.put(randomBytes(10))
        let fs = try await makeFS(dir, cluster)
        let reply = try await resolve(fs, id.description)
        #expect(await errno { _ = try await fs.open(reply.attributes.ino, flags: O_WRONLY) } == EACCES)
        let parent = try await resolve(fs, id.description.split(separator: "/").dropLast().joined(separator: "/"))
        #expect(await errno { try await fs.unlink(parent: parent.attributes.ino, name: id.name) } == EPERM)
        #expect(await errno { _ = try await fs.setattr(reply.attributes.ino, changes: AttributeChanges(mode: 0o777)).value } == EPERM)
        #expect(await errno { _ = try await fs.mkdir(parent: MappingStore.rootIno, name: "x", mode: 0o755, caller: .root).value } == EPERM)
    }
}

@Suite struct ReadPathTests {
    @Test func secondReadIsServedFromTheCache() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(1_000_000)
        let id = cluster.put(content)
        let fs = try await makeFS(dir, cluster)
        let ino = try await resolve(fs, id.description).attributes.ino
        #expect(try await readAll(fs, ino) == content)
        let reads = cluster.count("read")
        let hits = fs.metrics.cacheHits.load()
        #expect(try await readAll(fs, ino) == content)
        #expect(cluster.count("read") == reads)
        #expect(fs.metrics.cacheHits.load() > hits)
        #expect(fs.cache.usedBytes <= fs.cache.capacity)
    }

    @Test func filesLargerThanTheCacheKeepItUnderItsCap() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(3_000_000)
        let id = cluster.put(content)
        let fs = try await makeFS(dir, cluster) { $0.cacheSize = 1 << 20 }
        let ino = try await resolve(fs, id.description).attributes.ino
        #expect(try await readAll(fs, ino, chunk: 65536) == content)
        #expect(fs.cache.usedBytes <= 1 << 20)
    }

    /// A storage that fails or stalls is replaced by another. With `onlySourceNamed`
    /// (issue 15 item 3), QUERY_FETCH_ALL names only the source, which is down (the tracker
    /// does not know yet that the replica has the file): the read asks for more storages and is
    /// served by the group's other member instead of failing with EIO.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func aFailingOrStallingStorageIsReplaced(stall: Bool, onlySourceNamed: Bool) async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(2_000_000)
        let id = cluster.put(content)
        cluster.state.withLock { s in
            s.onlySourceNamed = onlySourceNamed
            if stall { s.stallFirstReplica = true } else { s.failFirstReplica = true }
        }
        let fs = try await makeFS(dir, cluster) { $0.stallTimeout = 0.2 }
        let ino = try await resolve(fs, id.description).attributes.ino
        // A stalled replica sleeps 30 s: well under that means it was raced, not waited for
        // (the bound is loose because a loaded 2-core machine took 7-11 s).
        let started = ContinuousClock.now
        #expect(try await readAll(fs, ino) == content)
        #expect(ContinuousClock.now - started < .seconds(25))
        #expect(fs.metrics.failovers.load() > 0)
        if onlySourceNamed {
            #expect(cluster.count("moreReadTargets") >= 1)
            // The storage that answered is remembered: of the 31 blocks, only those already in
            // flight when the first failover ended asked again.
            #expect(cluster.count("moreReadTargets") < 8)
        }
    }

    @Test func wholeFileCRCMismatchIsEIO() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let id = cluster.put(randomBytes(300_000))
        cluster.state.withLock { $0.corruptReads = true }
        let fs = try await makeFS(dir, cluster)
        let ino = try await resolve(fs, id.description).attributes.ino
        #expect(await errno { _ = try await readAll(fs, ino) } == EIO)
        #expect(fs.metrics.crcMismatches.load() == 1)
        #expect(fs.cache.blockCount == 0)
    }
}

@Suite struct WritePathTests {
    @Test func writtenFilesAreUploadedWithMetadataAndVisibleTwice() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let photos = try await fs.mkdir(parent: group, name: "photos", mode: 0o755, caller: .root).value.attributes.ino
        let content = randomBytes(123_456)
        let ino = try await writeFile(fs, parent: photos, "a.jpg", content)
        let idText = String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self)
        let id = try FileID(idText)
        #expect(cluster.bytes(id) == content)
        await fs.writeMetadata()
        #expect(cluster.meta(id)?["path"] == "group1/photos/a.jpg")
        #expect(cluster.meta(id)?["mode"] == "644")
        #expect(id.fileExtension == "jpg")
        #expect(try await readAll(fs, ino) == content)
        // The generated path is listed too.
        let generated = try await resolve(fs, id.description)
        #expect(generated.attributes.size == 123_456)
        #expect(try fs.store.exportAll().map(\.path) == ["group1/photos/a.jpg"])
    }

    @Test(arguments: [false, true]) func writeOnlyOpensBypassThePageCache(cachedWrites: Bool) async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.directWrites = !cachedWrites }
        let group = try await resolve(fs, "group1").attributes.ino
        let (entry, created) = try await fs.create(parent: group, name: "w", mode: 0o644, flags: O_WRONLY | O_CREAT, caller: .root).value
        #expect(created.directIO == !cachedWrites)
        try await fs.flush(entry.attributes.ino, handle: created.handle).value
        try await fs.release(entry.attributes.ino, handle: created.handle).value
        // Descriptors that can read keep the page cache (and mmap).
        for (flags, direct) in [(O_WRONLY | O_TRUNC, !cachedWrites), (O_RDWR, false), (O_RDONLY, false)] {
            let open = try await fs.open(entry.attributes.ino, flags: flags)
            #expect(open.directIO == direct, "flags \(flags)")
            try await fs.release(entry.attributes.ino, handle: open.handle).value
        }
    }

    @Test(arguments: [false, true]) func directIOReadsSkipThePageCache(directIO: Bool) async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(300_000)
        let id = cluster.put(content)
        let fs = try await makeFS(dir, cluster) { $0.directReads = directIO }
        let ino = try await resolve(fs, id.description).attributes.ino
        let open = try await fs.open(ino, flags: O_RDONLY)
        // Immutable files keep their page cache across opens unless direct_io asks otherwise.
        #expect(open.directIO == directIO)
        #expect(open.keepCache == !directIO)
        let read = try await fs.read(open.handle, offset: 0, size: content.count)
        #expect(Array(read.bytes) == content)
        try await fs.release(ino, handle: open.handle).value
    }

    @Test func metadataWaitsForAPauseInUploads() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "busy.txt", randomBytes(1000))
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        // An upload was just committed: the background pass leaves the journal alone…
        await fs.writeMetadata(whenQuiet: true)
        #expect(cluster.meta(id)?["path"] == nil)
        #expect(try fs.store.metadataDue().count == 1)
        // …which a forced pass (or a quiet mount) writes.
        await fs.writeMetadata()
        #expect(cluster.meta(id)?["path"] == "group1/busy.txt")
        #expect(try fs.store.metadataDue().isEmpty)
    }

    @Test func metadataIsJournaledAndFollowsDirectoryRenames() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        fs.stop() // no background passes: the journal alone must carry the work
        let group = try await resolve(fs, "group1").attributes.ino
        let d = try await fs.mkdir(parent: group, name: "d", mode: 0o755, caller: .root).value.attributes.ino
        let sub = try await fs.mkdir(parent: d, name: "sub", mode: 0o755, caller: .root).value.attributes.ino
        let ino = try await writeFile(fs, parent: sub, "f.txt", [1, 2, 3])
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(try fs.store.metadataDue().map(\.fileID) == [id.description])
        // A new process on the same state directory (as after kill -9) finds the journal.
        let second = try FDFSFileSystem(options: fs.options, cluster: cluster, stateDir: dir.path + "/state", logger: quiet)
        await second.writeMetadata()
        #expect(cluster.meta(id)?["path"] == "group1/d/sub/f.txt")
        #expect(try second.store.metadataDue().isEmpty)
        // Renaming a directory rewrites the path of every file below it.
        try await fs.rename(parent: group, name: "d", newParent: group, newName: "e", flags: 0)
        #expect(try fs.store.metadataDue().map(\.fileID) == [id.description])
        await fs.writeMetadata()
        #expect(cluster.meta(id)?["path"] == "group1/e/sub/f.txt")
        #expect(try fs.store.metadataDue().isEmpty)
    }

    @Test func renameIsMetadataOnlyAndReplacedFilesAreDeleted() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let old = try await writeFile(fs, parent: group, "target", [1, 2, 3])
        let oldID = try FileID(String(decoding: try await fs.getxattr(old, name: "user.fdfs.file_id"), as: UTF8.self))
        try await writeFile(fs, parent: group, ".target.AbC123", [4, 5, 6, 7])
        #expect(cluster.count("upload") == 2)
        try await fs.rename(parent: group, name: ".target.AbC123", newParent: group, newName: "target", flags: 0)
        #expect(cluster.count("upload") == 2)
        #expect(cluster.bytes(oldID) == nil)
        // Metadata is written after the rename, with the final name.
        await fs.writeMetadata()
        let newID = try FileID(String(decoding: try await fs.getxattr(try await resolve(fs, "group1/target").attributes.ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(cluster.meta(newID)?["path"] == "group1/target")
        let now = try await resolve(fs, "group1/target")
        #expect(try await readAll(fs, now.attributes.ino) == [4, 5, 6, 7])
        #expect(await errno { try await fs.rename(parent: group, name: "target", newParent: MappingStore.rootIno, newName: "x", flags: 0) } == EPERM)
        // rmdir refuses non-empty directories; unlink removes the cluster file.
        let d = try await fs.mkdir(parent: group, name: "d", mode: 0o755, caller: .root).value.attributes.ino
        try await writeFile(fs, parent: d, "f", [9])
        #expect(await errno { try await fs.rmdir(parent: group, name: "d") } == ENOTEMPTY)
        let before = cluster.fileCount
        try await fs.unlink(parent: d, name: "f")
        #expect(cluster.fileCount == before - 1)
        try await fs.rmdir(parent: group, name: "d")
    }

    @Test func spoolCapGivesENOSPCAndKeepsEverythingClosed() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.spoolSize = 1_000_000 }
        let group = try await resolve(fs, "group1").attributes.ino
        let kept = randomBytes(600_000)
        let ino = try await writeFile(fs, parent: group, "kept", kept)
        let (entry, open) = try await fs.create(parent: group, name: "big", mode: 0o644, flags: O_WRONLY, caller: .root).value
        // The spool holds what is being written: 600 KB open here plus 600 KB more is too much.
        let chunk = randomBytes(600_000)
        _ = try chunk.withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        let code = await errno { _ = try chunk.withUnsafeBytes { try fs.write(open.handle, offset: 600_000, bytes: $0) } }
        #expect(code == ENOSPC)
        #expect(fs.spool.usedBytes <= 1_000_000)
        try await fs.release(entry.attributes.ino, handle: open.handle).value
        #expect(try await readAll(fs, ino) == kept)
    }

    @Test func failedUploadIsEIOAndRetriedLater() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        cluster.state.withLock { $0.failUploads = FSError(.unreachable, "tracker down") }
        let content = randomBytes(50_000)
        let code = await errno { try await writeFile(fs, parent: group, "later", content) }
        #expect(code == EIO)
        // The data is kept and readable; once the cluster is back the retrier commits it.
        let ino = try await resolve(fs, "group1/later").attributes.ino
        #expect(try await readAll(fs, ino) == content)
        cluster.state.withLock { $0.failUploads = nil }
        await fs.background()
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(cluster.bytes(id) == content)
        #expect(try fs.store.pendingUploads().isEmpty)
    }

    @Test func truncateAndAppendableUpdatesInPlace() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.appendable = true }
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "log", Array("hello ".utf8))
        let first = String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self)
        #expect(try FileID(first).kind == .appender)
        let open = try await fs.open(ino, flags: O_WRONLY)
        _ = try Array("world".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 6, bytes: $0) }
        _ = try Array("J".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        let second = String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self)
        #expect(second == first)
        #expect(cluster.bytes(try FileID(first)) == Array("Jello world".utf8))
        #expect(cluster.count("append") == 1 && cluster.count("modify") == 1 && cluster.count("upload") == 1)
        _ = try await fs.setattr(ino, changes: AttributeChanges(size: 5)).value
        #expect(cluster.bytes(try FileID(first)) == Array("Jello".utf8))
        #expect(try await readAll(fs, ino) == Array("Jello".utf8))
    }

    /// Appendable mode: a write that lands while an in-place update runs reaches the cluster
    /// with the next update (it used to be forgotten: no MODIFY for it).
    @Test func writesDuringAnInPlaceUpdateReachTheClusterNextTime() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.appendable = true }
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "log", Array("hello world".utf8))
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        let open = try await fs.open(ino, flags: O_WRONLY)
        _ = try Array("J".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        cluster.modifyGate.close()
        let first = Task { try await fs.flush(ino, handle: open.handle).value }
        await cluster.modifyGate.held()
        _ = try Array("W".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 6, bytes: $0) }
        cluster.modifyGate.open()
        try await first.value
        #expect(cluster.bytes(id) == Array("Jello world".utf8))
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.bytes(id) == Array("Jello World".utf8))
        #expect(try await readAll(fs, ino) == Array("Jello World".utf8))
    }
}

@Suite struct RecoveryTests {
    @Test func crashRecoveryFinishesAdoptsAndCleans() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        var adoptedIno: UInt64 = 0, resumedIno: UInt64 = 0
        var uploadedID: FileID?
        do {
            let fs = try await makeFS(dir, cluster)
            let group = try await resolve(fs, "group1").attributes.ino
            // 1. Created and written, never closed: must vanish.
            let (_, open) = try await fs.create(parent: group, name: "unclosed", mode: 0o644, flags: O_WRONLY, caller: .root).value
            _ = try [1, 2, 3].withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
            // 2. Upload done, commit not recorded: must be adopted.
            let (a, _) = try await fs.create(parent: group, name: "adopted", mode: 0o644, flags: O_WRONLY, caller: .root).value
            adoptedIno = a.attributes.ino
            uploadedID = cluster.put([7, 7, 7])
            let spoolA = fs.spool.dir + "/sfake_a"
            _ = FileManager.default.createFile(atPath: spoolA, contents: Data([7, 7, 7]))
            let pa = try fs.store.beginUpload(ino: adoptedIno, spool: spoolA, size: 3, oldFileID: nil, inPlace: false)
            try fs.store.uploaded(pending: pa, fileID: uploadedID!.description)
            // 3. Upload started, no answer: must be uploaded again from the spool.
            let (r, _) = try await fs.create(parent: group, name: "resumed", mode: 0o644, flags: O_WRONLY, caller: .root).value
            resumedIno = r.attributes.ino
            let spoolR = fs.spool.dir + "/sfake_r"
            _ = FileManager.default.createFile(atPath: spoolR, contents: Data([5, 5]))
            _ = try fs.store.beginUpload(ino: resumedIno, spool: spoolR, size: 2, oldFileID: nil, inPlace: false)
            fs.stop()
            // The process "dies" here: nothing else is closed or committed.
        }
        let fs = try await makeFS(dir, cluster)
        #expect(await errno { _ = try await resolve(fs, "group1/unclosed") } == ENOENT)
        let adopted = try await resolve(fs, "group1/adopted")
        #expect(adopted.attributes.ino == adoptedIno)
        #expect(String(decoding: try await fs.getxattr(adoptedIno, name: "user.fdfs.file_id"), as: UTF8.self) == uploadedID!.description)
        await fs.background()
        let resumed = try await resolve(fs, "group1/resumed")
        #expect(try await readAll(fs, resumed.attributes.ino) == [5, 5])
        #expect(try fs.store.pendingUploads().isEmpty)
        #expect(try fs.store.exportAll().map(\.path) == ["group1/adopted", "group1/resumed"])
        #expect(fs.spool.files().isEmpty)
    }
}
