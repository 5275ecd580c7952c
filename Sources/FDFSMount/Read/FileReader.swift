import Logging
import Synchronization

/// Reads one open cluster file: finds which blocks a READ touches, copies what the cache has
/// at once, fetches the rest, issues read-ahead as the reads turn sequential, and checks a
/// whole-file read against the CRC32 in the name. One per open handle; blocks come from the
/// mount's shared ``BlockStore``.
public final class FileReader: Sendable {
    /// What one handle's reads have seen so far.
    struct Progress: Sendable {
        var readAhead: ReadAhead
        var check: WholeFileCheck
    }

    public let ref: FileRef
    let store: BlockStore
    let metrics: MountMetrics
    let logger: Logger
    private let progress: Mutex<Progress>

    /// `maxWindow`: the largest read-ahead, in bytes (`-o readahead`).
    public init(ref: FileRef, store: BlockStore, maxWindow: Int64, metrics: MountMetrics, logger: Logger) {
        self.ref = ref
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.progress = Mutex(Progress(readAhead: ReadAhead(blockSize: store.blockSize, maxWindow: maxWindow), check: WholeFileCheck(ref)))
    }

    /// Where the reads stand (tests).
    public var pattern: ReadAhead.Pattern { progress.withLock { $0.readAhead.pattern } }
    var isSequential: Bool { progress.withLock { $0.readAhead.isSequential } }
    public var check: WholeFileCheck { progress.withLock { $0.check } }

    /// The synchronous part of a READ, cheap enough for the libfuse thread: starts read-ahead,
    /// then answers from the cache: with `splice`, a request within one verified on-disk block
    /// as a ``CachedSpan`` (no copy here); a request within one block still in memory from
    /// that block; otherwise copies every touched block the cache has into the reply. `.done`
    /// (or `.spliced`) when nothing was missing; otherwise finish with ``complete(_:)``.
    public func read(offset: Int64, size: Int, splice: Bool = false) throws(FSError) -> ReadProgress {
        let started = ContinuousClock.now
        let length = Int(max(0, min(Int64(size), ref.size - offset)))
        guard length > 0 else { return .done(ReadResult(ByteStorage(capacity: 0))) }
        // Read-ahead first, so the fetches overlap with this request.
        let ahead = progress.withLock { $0.readAhead.record(offset: offset, length: Int64(length), fileSize: ref.size) }
        for index in ahead { store.prefetch(ref, index) }
        let blockSize = Int64(store.blockSize)
        let first = Int(offset / blockSize), last = Int((offset + Int64(length) - 1) / blockSize)
        if first == last {
            let start = Int(offset - Int64(first) * blockSize), key = ref.key(first)
            if splice, let span = store.cache.span(key, offset: start, length: length) {
                countHit(length)
                try finish(crcs: [first: span.hit.blockCRC], started: started)
                return .spliced(span)
            }
            if let block = store.inMemory(key, offset: start, length: length) {
                countHit(length)
                try finish(crcs: [first: block.crc32], started: started)
                return .done(ReadResult(block.storage, offset: start, count: length))
            }
        }
        let storage = ByteStorage(capacity: length)
        storage.count = length
        var missing: [Int] = []
        var crcs: [Int: UInt32] = [:]
        for index in first...last {
            let (start, count, destination) = slice(index, offset: offset, length: length, storage: storage)
            if let hit = store.cached(ref.key(index), offset: start, length: count, into: destination) {
                crcs[index] = hit.blockCRC
                countHit(count)
            } else {
                missing.append(index)
            }
        }
        let pending = PendingRead(reader: self, offset: offset, storage: storage, missing: missing, crcs: crcs, started: started)
        guard missing.isEmpty else { return .pending(pending) }
        try finish(crcs: crcs, started: started)
        return .done(ReadResult(storage))
    }

    /// Fetches the blocks the cache did not have, then finishes the READ.
    public func complete(_ pending: PendingRead) async throws(FSError) -> ReadResult {
        var pending = pending
        var direct: ReadResult?
        for index in pending.missing {
            let (start, count, destination) = slice(index, offset: pending.offset, length: pending.storage.count, storage: pending.storage)
            // A read-ahead fetch may have landed since the cache was asked: it is joined, or
            // taken from memory, or (on disk by now) read from the cache once.
            var fetched = try await store.fetch(ref, index, sequential: isSequential, unlessCached: true)
            if fetched == nil {
                if let hit = store.cached(ref.key(index), offset: start, length: count, into: destination) {
                    pending.crcs[index] = hit.blockCRC
                    countHit(count)
                    continue
                }
                fetched = try await store.fetch(ref, index, sequential: isSequential)
            }
            guard let block = fetched else { throw FSError(.io, "block \(index) of \(ref.id) not fetched") }
            guard start + count <= block.length else { throw FSError(.io, "short block \(index) of \(ref.id)") }
            store.used(ref.key(index), upTo: start + count, of: block)
            pending.crcs[index] = block.crc32
            if count == pending.storage.count {
                // The whole request lies in this block: reply from the block itself.
                direct = ReadResult(block.storage, offset: start, count: count)
            } else {
                destination.copyMemory(from: block.storage.pointer + start, byteCount: count)
            }
        }
        try finish(crcs: pending.crcs, started: pending.started)
        return direct ?? ReadResult(pending.storage)
    }

    /// Where block `index` meets the request: offset within the block, byte count, and the
    /// destination in the reply buffer.
    func slice(_ index: Int, offset: Int64, length: Int, storage: ByteStorage) -> (Int, Int, UnsafeMutableRawPointer) {
        let blockSize = Int64(store.blockSize)
        let blockStart = Int64(index) * blockSize
        let from = max(offset, blockStart)
        let to = min(offset + Int64(length), blockStart + blockSize)
        return (Int(from - blockStart), Int(to - from), storage.pointer + Int(from - offset))
    }

    private func countHit(_ bytes: Int) {
        metrics.add(metrics.cacheHits)
        metrics.add(metrics.bytesFromCache, Int64(bytes))
    }

    /// Records the latency and the block CRCs for the whole-file check; a failed check drops
    /// the file's cached blocks and fails this READ.
    func finish(crcs: [Int: UInt32], started: ContinuousClock.Instant) throws(FSError) {
        metrics.observeRead(seconds: Self.seconds(ContinuousClock.now - started))
        guard ref.checkCRC else { return }
        let verdict = progress.withLock { $0.check.record(crcs, of: ref, blockSize: store.blockSize) }
        guard case let .failed(computed) = verdict else { return }
        metrics.add(metrics.crcMismatches)
        store.drop(ref.file)
        logger.error("CRC32 mismatch reading \(ref.id): computed \(String(computed, radix: 16)), name says \(String(ref.id.generated.crc32, radix: 16)); cached blocks dropped")
        throw FSError(.io, "CRC32 mismatch for \(ref.id)")
    }

    /// Copies the whole file into a local file descriptor (copy-on-write), with read-ahead of
    /// its own; not checked against the name (the upload that follows gets a new CRC).
    func copy(to fd: Int32, maxWindow: Int64) async throws(FSError) {
        let blockSize = store.blockSize
        var offset: Int64 = 0
        var ahead = ReadAhead(blockSize: blockSize, maxWindow: maxWindow)
        let storage = ByteStorage(capacity: blockSize)
        while offset < ref.size {
            let length = Int(min(Int64(blockSize), ref.size - offset))
            for index in ahead.record(offset: offset, length: Int64(length), fileSize: ref.size) { store.prefetch(ref, index) }
            let index = Int(offset / Int64(blockSize))
            // A fetched block is written out from itself, without a copy into `storage`.
            var fetched: Block?
            if store.cached(ref.key(index), offset: 0, length: length, into: storage.pointer) == nil {
                fetched = try await store.fetch(ref, index)
                if let fetched { store.used(ref.key(index), upTo: length, of: fetched) }
            }
            let written = withExtendedLifetime(fetched) {
                POSIX.pwriteAll(fd, fetched?.storage.pointer ?? storage.pointer, length, offset)
            }
            guard written else { throw FSError.posix("write spool") }
            offset += Int64(length)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }
}

/// Result of the synchronous part of a READ.
public enum ReadProgress: Sendable {
    /// Every byte came from the cache or the spool.
    case done(ReadResult)
    /// Some blocks must be fetched: finish with ``FDFSFileSystem/completeRead(_:)``.
    case pending(PendingRead)
    /// Every byte lies in one cached block the kernel can splice from its cache file (only
    /// when the caller asked for it).
    case spliced(CachedSpan)
}

/// A READ whose cached part is done and whose missing blocks still need fetching.
public struct PendingRead: Sendable {
    let reader: FileReader
    let offset: Int64
    let storage: ByteStorage
    let missing: [Int]
    var crcs: [Int: UInt32]
    let started: ContinuousClock.Instant
}
