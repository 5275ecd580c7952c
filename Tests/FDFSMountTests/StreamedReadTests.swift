import FDFSClient
import FDFSMount
import FDFSProtocol
import FDFSTestSupport
import Synchronization
import Testing

/// What a streamed READ delivered, taken out of its pipe (or memory) as the kernel would.
final class Delivered: Sendable {
    private let taken = Mutex<[UInt8]>([])

    func take(_ body: SplicedBody) {
        let bytes = body.take().bytes
        taken.withLock { $0 = bytes }
    }

    var bytes: [UInt8] { taken.withLock { $0 } }
}

/// Streamed READs (``FileReader/streamChoice(offset:length:blocks:)``): in-order READs of
/// blocks the cache would not keep go from a storage through a pipe, bypassing the blocks.
extension ReaderTests {
    /// READ number `index` of `chunk`-byte READs from the start, which must be streamed.
    func streamed(_ reader: FileReader, _ index: Int, chunk: Int) throws -> StreamedRead {
        guard case let .streamed(read) = try reader.read(offset: Int64(index * chunk), size: chunk, splice: true) else {
            throw FSError(.io, "READ \(index) not streamed")
        }
        return read
    }

    /// Finishes a streamed READ: the bytes it delivered, and what it fell back to (nil: none).
    func deliver(_ reader: FileReader, _ read: StreamedRead) async throws -> (bytes: [UInt8], fellBack: ReadResult?) {
        let delivered = Delivered()
        let fellBack = try await reader.deliver(read) { delivered.take($0) }
        return (delivered.bytes, fellBack)
    }

    @Test func aStreamTheCacheWouldNotKeepGoesThroughAPipeAndARereadIsCached() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let id = cluster.put(content)
        let parts = try parts(dir, cluster, smallFile: Self.smallFile)
        let ref = FileRef(id: id, size: Int64(content.count))
        // READs straddling blocks, as the kernel's 896 KiB READs straddle 1 MiB blocks.
        let chunk = Self.blockSize * 7 / 8
        #expect(try await readAll(parts.reader(ref), chunk: chunk, splice: true) == content)
        let reads = (content.count + chunk - 1) / chunk
        #expect(parts.metrics.streamedReads.load() == Int64(reads), "every READ streamed")
        #expect(cluster.count("read") == reads, "one download per READ, no read-ahead")
        parts.cache.flush()
        #expect(parts.cache.blockCount == 0, "nothing cached on the way")
        #expect(parts.metrics.prefetches.load() == 0)

        // Read again: a re-read, which goes through the blocks and is cached.
        #expect(try await readAll(parts.reader(ref), chunk: chunk, splice: true) == content)
        #expect(parts.metrics.streamedReads.load() == Int64(reads), "the second pass is not streamed")
        parts.cache.flush()
        #expect(parts.cache.blockCount > 0, "read again: admitted")
    }

    /// A handle's streamed READs take their bytes from one download in order, whatever order
    /// they arrive in (libfuse's threads take the kernel's READs up in any order); a READ the
    /// stream has passed is downloaded on its own; pages the kernel skipped are dropped from the
    /// stream.
    @Test func aHandlesStreamedReadsShareOneDownloadInOrder() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let ref = FileRef(id: cluster.put(content), size: Int64(content.count))
        let parts = try parts(dir, cluster, smallFile: Self.smallFile)
        let reader = parts.reader(ref)
        let chunk = Self.blockSize * 7 / 8
        func streamed(_ index: Int) throws -> StreamedRead { try self.streamed(reader, index, chunk: chunk) }
        func deliver(_ read: StreamedRead) async throws -> [UInt8] {
            let delivered = try await self.deliver(reader, read)
            #expect(delivered.fellBack == nil)
            return delivered.bytes
        }
        func expected(_ index: Int) -> [UInt8] { Array(content[(index * chunk)..<min(content.count, (index + 1) * chunk)]) }

        // The first READ finds the file's storages; the stream starts with the second.
        #expect(try await deliver(streamed(0)) == expected(0))
        // Six READs, delivered at once in reverse order.
        let reads = try (1...6).map { try streamed($0) }
        let bytes = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, read) in reads.enumerated().reversed() { group.addTask { (index + 1, try await deliver(read)) } }
            return try await group.reduce(into: [Int: [UInt8]]()) { $0[$1.0] = $1.1 }
        }
        for index in 1...6 { #expect(bytes[index] == expected(index), "READ \(index)") }
        // READ 8 without READ 7 (the kernel had those pages): 7's bytes are dropped.
        #expect(try await deliver(streamed(8)) == expected(8))
        // Behind the stream now: a download of its own.
        #expect(try await deliver(streamed(7)) == expected(7))
        #expect(cluster.count("openStream") == 1, "one download for the handle's streamed READs")
        #expect(parts.metrics.streamedReads.load() == 9)
        reader.stop()
        parts.cache.flush()
        #expect(parts.cache.blockCount == 0)
    }

    /// At most ``BlockFetcher/streamLimit`` handles hold a download for their streamed READs
    /// (each holds a storage connection while it is open); the READs of the others download on
    /// their own, and a closed handle gives its place back.
    @Test func openDownloadsForStreamsAreBounded() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        // Files just above what the cache keeps, one per handle (a second pass over a file
        // is a re-read, which is not streamed).
        let content = randomBytes(3 * Self.blockSize)
        let parts = try parts(dir, cluster, smallFile: Int64(2 * Self.blockSize))
        let chunk = Self.blockSize * 7 / 8
        func reader() -> FileReader { parts.reader(FileRef(id: cluster.put(content), size: Int64(content.count))) }
        func readTwo(_ reader: FileReader) async throws {
            for index in 0..<2 {
                let delivered = try await deliver(reader, streamed(reader, index, chunk: chunk))
                #expect(delivered.bytes == Array(content[(index * chunk)..<((index + 1) * chunk)]))
            }
        }
        let limit = BlockFetcher.streamLimit
        let readers = (0...limit).map { _ in reader() }
        for reader in readers { try await readTwo(reader) }
        #expect(cluster.count("openStream") == limit)
        #expect(parts.store.fetcher.streamsOpen == limit)
        readers[0].stop()
        #expect(parts.store.fetcher.streamsOpen == limit - 1)
        let another = reader()
        try await readTwo(another)
        #expect(cluster.count("openStream") == limit + 1, "a closed handle gave its place back")
        for reader in readers + [another] { reader.stop() }
        #expect(parts.store.fetcher.streamsOpen == 0)
    }

    /// A handle whose reader paused longer than the idle limit gets a new download at its next
    /// READ (a storage may have dropped the old one), and goes on streaming.
    @Test func aStreamIdleTooLongIsOpenedAgain() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let ref = FileRef(id: cluster.put(content), size: Int64(content.count))
        let parts = try parts(dir, cluster, smallFile: Self.smallFile, streamIdleLimit: .milliseconds(200))
        let reader = parts.reader(ref)
        let chunk = Self.blockSize * 7 / 8
        func readAt(_ index: Int) async throws -> [UInt8] {
            let delivered = try await deliver(reader, streamed(reader, index, chunk: chunk))
            #expect(delivered.fellBack == nil)
            return delivered.bytes
        }
        for index in 0..<3 { #expect(try await readAt(index) == Array(content[(index * chunk)..<((index + 1) * chunk)])) }
        #expect(cluster.count("openStream") == 1)
        try await Task.sleep(for: .milliseconds(400))
        for index in 3..<5 { #expect(try await readAt(index) == Array(content[(index * chunk)..<((index + 1) * chunk)])) }
        #expect(cluster.count("openStream") == 2, "opened again after the pause, once")
        #expect(parts.store.fetcher.streamsOpen == 1, "the idle one gave its place back")
        #expect(parts.metrics.streamedReads.load() == 5)
        reader.stop()
    }

    @Test func onlyInOrderReadsOfLargeFilesInRereadOrNeverAreStreamed() async throws {
        let cluster = MemoryCluster()
        let large = randomBytes(Self.largeSize), small = randomBytes(3 * Self.blockSize)
        let largeRef = FileRef(id: cluster.put(large), size: Int64(large.count))
        let smallRef = FileRef(id: cluster.put(small), size: Int64(small.count))
        func streams(_ parts: Parts, _ ref: FileRef, at offset: Int64) throws -> Bool {
            if case .streamed = try parts.reader(ref).read(offset: offset, size: Self.blockSize, splice: true) { return true }
            return false
        }
        let rereadDir = TempDir(), neverDir = TempDir(), alwaysDir = TempDir(), offDir = TempDir()
        let reread = try parts(rereadDir, cluster, smallFile: Self.smallFile)
        #expect(try streams(reread, largeRef, at: 0))
        #expect(try !streams(reread, smallRef, at: 0), "small files are cached")
        #expect(try !streams(reread, largeRef, at: Int64(20 * Self.blockSize)), "a first READ away from the start is random")
        #expect(try !reread.reader(largeRef).read(offset: 0, size: Self.blockSize).isStreamed, "only when the caller can reply from a pipe")
        #expect(try !reread.reader(largeRef, mayStream: false).read(offset: 0, size: Self.blockSize, splice: true).isStreamed, "direct_io")
        #expect(try streams(parts(neverDir, cluster, mode: .never, smallFile: Self.smallFile), smallRef, at: 0), "never: any size")
        #expect(try !streams(parts(alwaysDir, cluster, mode: .always, smallFile: Self.smallFile), largeRef, at: 0))
        #expect(try !streams(parts(offDir, cluster, smallFile: Self.smallFile, splicesStreams: false), largeRef, at: 0), "nosplice")
    }

    @Test func aFailedStreamIsReadThroughTheBlocksAndItsHandleStreamsNoMore() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let content = randomBytes(Self.largeSize)
        let ref = FileRef(id: cluster.put(content), size: Int64(content.count))
        let parts = try parts(dir, cluster, smallFile: Self.smallFile)
        // The stream's one storage fails; the blocks find the other one.
        cluster.state.withLock {
            $0.failFirstReplica = true
            $0.onlySourceNamed = true
        }
        let reader = parts.reader(ref)
        #expect(try await readAll(reader, chunk: Self.blockSize, splice: true) == content)
        #expect(parts.metrics.streamedReads.load() == 0)
        #expect(parts.metrics.failovers.load() > 0, "the blocks failed over to the other storage")
        #expect(try !reader.read(offset: 0, size: Self.blockSize, splice: true).isStreamed)
    }
}

extension ReadProgress {
    var isStreamed: Bool {
        if case .streamed = self { return true }
        return false
    }
}
