import FDFSMount
import FDFSProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `cache=` admission (``BlockStore/shouldCache(_:_:)``) and cached blocks spliced from their
/// cache file (``CachedSpan``) once verified in the mount's life.
extension ReaderTests {
    /// A file above the small-file size the admission tests give `reread`.
    static let largeSize = 40 * blockSize
    static let smallFile = Int64(8 * blockSize)

    @Test func rereadCachesALargeStreamOnlyWhenItIsReadAgain() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let id = cluster.put(content)
        let parts = try parts(dir, cluster, capacity: 1 << 20, smallFile: Self.smallFile)
        let ref = FileRef(id: id, size: Int64(content.count))
        #expect(try await readAll(parts.reader(ref), chunk: Self.blockSize) == content)
        parts.cache.flush()
        #expect(parts.cache.blockCount == 0, "read once from start to end: nothing written")
        #expect(cluster.count("read") == 40, "and every block fetched once")
        #expect(try await readAll(parts.reader(ref), chunk: Self.blockSize) == content)
        parts.cache.flush()
        #expect(parts.cache.blockCount > 0, "read again: admitted")
        #expect(parts.cache.usedBytes <= parts.cache.capacity)
    }

    @Test func rereadCachesSmallFilesAndRandomReaders() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let small = randomBytes(3 * Self.blockSize)
        let large = randomBytes(Self.largeSize)
        let smallID = cluster.put(small), largeID = cluster.put(large)
        let parts = try parts(dir, cluster, smallFile: Self.smallFile)
        let smallRef = FileRef(id: smallID, size: Int64(small.count))
        #expect(try await readAll(parts.reader(smallRef)) == small)
        let largeRef = FileRef(id: largeID, size: Int64(large.count))
        let offset = 30 * Self.blockSize + 10
        #expect(try await read(parts.reader(largeRef), offset: Int64(offset), size: 100).bytes[...] == large[offset..<offset + 100])
        parts.cache.flush()
        for index in 0..<3 { #expect(parts.cache.contains(smallRef.key(index))) }
        #expect(parts.cache.contains(largeRef.key(30)), "a read that does not start at 0 is random")
    }

    @Test func neverAndAlwaysMeanWhatTheySay() async throws {
        let cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let id = cluster.put(content)
        let ref = FileRef(id: id, size: Int64(content.count))
        let neverDir = TempDir()
        let never = try parts(neverDir, cluster, mode: .never, smallFile: Self.smallFile)
        #expect(try await read(never.reader(ref), offset: 7, size: 100).bytes[...] == content[7..<107])
        never.cache.flush()
        #expect(never.cache.blockCount == 0)
        let alwaysDir = TempDir()
        let always = try parts(alwaysDir, cluster, mode: .always, capacity: 32 << 20)
        #expect(try await readAll(always.reader(ref), chunk: Self.blockSize) == content)
        always.cache.flush()
        #expect(always.cache.blockCount == (content.count + Self.blockSize - 1) / Self.blockSize)
    }

    @Test func verifiedBlocksAreSplicedAndOthersCheckedFirst() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(3 * Self.blockSize)
        let id = cluster.put(content)
        let ref = FileRef(id: id, size: Int64(content.count))
        let parts = try parts(dir, cluster)
        #expect(try await readAll(parts.reader(ref), chunk: Self.blockSize) == content)
        parts.cache.flush()
        // Written by this mount: spliced at once, and the whole-file check still completes.
        let reader = parts.reader(ref)
        for index in 0..<3 {
            let offset = Int64(index * Self.blockSize)
            guard case let .spliced(span) = try reader.read(offset: offset, size: Self.blockSize, splice: true) else {
                Issue.record("block \(index) not spliced")
                continue
            }
            #expect(span.count == Self.blockSize)
        }
        #expect(reader.check == .done)
        // After a remount (a new cache over the same files) the first read checks the block;
        // the next one splices it, with the right bytes.
        let remounted = try self.parts(dir, cluster)
        let again = remounted.reader(ref)
        let (first, synchronous) = try await read(again, offset: 0, size: Self.blockSize, splice: true)
        #expect(synchronous && first[...] == content[0..<Self.blockSize])
        guard case .done = try again.read(offset: Int64(Self.blockSize), size: Self.blockSize, splice: true) else {
            Issue.record("an unverified block was spliced")
            return
        }
        let (second, _) = try await read(again, offset: 10, size: 1000, splice: true)
        #expect(second[...] == content[10..<1010])
        guard case .spliced = try again.read(offset: 0, size: 100, splice: true) else {
            Issue.record("a verified block was not spliced")
            return
        }
        #expect(cluster.count("read") == 3, "nothing fetched again")
    }

    @Test func aSlotBeingSplicedOutlivesItsEviction() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.blockSize)
        let id = cluster.put(content)
        let ref = FileRef(id: id, size: Int64(content.count))
        let parts = try parts(dir, cluster)
        _ = try await readAll(parts.reader(ref))
        parts.cache.flush()
        var span = parts.cache.span(ref.key(0), offset: 0, length: content.count)
        #expect(span != nil)
        #expect(parts.cache.drop(ref.key(0), reason: "test"))
        parts.cache.flush()
        #expect(parts.cache.usedBytes > 0, "the pinned slot still counts against the cap")
        var bytes = [UInt8](repeating: 0, count: content.count)
        let n = bytes.withUnsafeMutableBytes { pread(span!.fd, $0.baseAddress, content.count, off_t(span!.offset)) }
        #expect(n == content.count && bytes == content, "not punched out while spliced")
        span = nil
        parts.cache.flush()
        #expect(parts.cache.usedBytes == 0)
        #expect(access(parts.cache.path(ref.file), F_OK) != 0, "the file went with its last block")
    }
}
