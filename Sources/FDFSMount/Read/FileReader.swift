import FDFSClient
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
        /// Blocks this handle's streamed READs touched lately (READs straddle blocks and may
        /// arrive a little out of order): touching one again is no re-read.
        var streamed = RecentBlocks()
        /// This handle's READs are streamed (``streamChoice(offset:length:blocks:)``).
        var streaming = false
        /// A streamed READ failed: this handle reads through the blocks from now on.
        var streamFailed = false
        /// The download this handle's streamed READs take their bytes from, in order.
        var sequence: SequentialStream?
    }

    public let ref: FileRef
    let store: BlockStore
    let metrics: MountMetrics
    let logger: Logger
    private let progress: Mutex<Progress>

    /// Whether its READs may be streamed (``streamChoice(offset:length:blocks:)``): not for
    /// `direct_io` handles, whose READs the kernel sends one at a time.
    let mayStream: Bool

    /// `maxWindow`: the largest read-ahead, in bytes (`-o readahead`).
    public init(ref: FileRef, store: BlockStore, maxWindow: Int64, metrics: MountMetrics, logger: Logger, mayStream: Bool = true) {
        self.mayStream = mayStream
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

    /// The synchronous part of a READ, cheap enough for the libfuse thread. With `splice` (the
    /// caller can reply from a file descriptor), an in-order READ of blocks the cache would not
    /// keep is `.streamed`: finish it with ``deliver(_:reply:completion:)``. Otherwise starts read-ahead,
    /// then answers from the cache: with `splice`, a request within one verified on-disk block
    /// as a ``CachedSpan`` (no copy here); a request within one block still in memory from
    /// that block; otherwise copies every touched block the cache has into the reply. `.done`
    /// (or `.spliced`) when nothing was missing; otherwise finish with ``complete(_:)``.
    public func read(offset: Int64, size: Int, splice: Bool = false) throws(FSError) -> ReadProgress {
        let started = ContinuousClock.now
        let length = Int(max(0, min(Int64(size), ref.size - offset)))
        guard length > 0 else { return .done(ReadResult(ByteStorage(capacity: 0))) }
        let blockSize = Int64(store.blockSize)
        let first = Int(offset / blockSize), last = Int((offset + Int64(length) - 1) / blockSize)
        switch splice ? streamChoice(offset: offset, length: length, blocks: first...last) : .blocks {
        case .stream:
            return .streamed(StreamedRead(reader: self, offset: offset, length: length, started: started))
        case .blocksOfAStream:
            break
        case .blocks:
            // Read-ahead first, so the fetches overlap with this request.
            let ahead = progress.withLock { $0.readAhead.record(offset: offset, length: Int64(length), fileSize: ref.size) }
            for index in ahead { store.prefetch(ref, index) }
        }
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

    /// How a READ is answered when the caller can reply from a pipe.
    enum StreamChoice {
        /// From a storage's socket through a pipe.
        case stream
        /// Through the blocks, with read-ahead.
        case blocks
        /// Through the blocks without read-ahead: a handle that streams touched a block the
        /// cache holds (from an earlier pass); the READs after it stream again.
        case blocksOfAStream
    }

    /// A READ within this distance of where a streaming handle's reads ended still belongs to
    /// the stream: the kernel's read-ahead has several READs in flight at once, and libfuse's
    /// threads take them up in any order.
    static let streamSlack: Int64 = 16 << 20

    /// Whether a READ goes from a storage's socket through a pipe to the caller, bypassing the
    /// blocks (and their read-ahead, copies and CRCs): READs of a file whose blocks the cache
    /// would not keep (``BlockStore/streams(_:)``), from the start or continuing the reads
    /// before, when no block the READ touches is cached or being fetched and none was read
    /// before by another pass (a re-read, which the cache keeps, goes through the blocks).
    func streamChoice(offset: Int64, length: Int, blocks: ClosedRange<Int>) -> StreamChoice {
        guard mayStream, length <= SplicePipe.capacity, store.streams(ref) else { return .blocks }
        return progress.withLock { p in
            guard !p.streamFailed else { return .blocks }
            let follows = p.streaming ? p.readAhead.isNear(offset, within: Self.streamSlack) : p.readAhead.continues(at: offset)
            guard follows else { return .blocks }
            let choice: StreamChoice
            if blocks.contains(where: { store.holds(ref.key($0)) }) {
                choice = p.streaming ? .blocksOfAStream : .blocks
            } else if !blocks.allSatisfy({ p.streamed.contains($0) || store.firstPass(ref.key($0)) }) {
                choice = .blocks
            } else {
                for index in blocks { p.streamed.insert(index) }
                p.streaming = true
                choice = .stream
            }
            if choice != .blocks { p.readAhead.follow(offset: offset, length: Int64(length)) }
            return choice
        }
    }

    /// Finishes a streamed READ: the bytes go from one storage into a pipe (or into memory when
    /// the pipe cannot hold them, ``SplicedBody``), and `reply` runs with them on the
    /// download's thread (the FUSE adapter replies from the pipe); then `completion` runs with
    /// nil. When the storage fails or stalls before the bytes are in the pipe, the READ is read
    /// through the blocks (with their failover), `completion` gets that result, and this
    /// handle streams no more. Streamed bytes are not checksummed, so a file read this way gets
    /// no whole-file CRC check. A READ that streams involves no task (``BlockFetcher/stream``).
    public func deliver(_ stream: StreamedRead, reply: @escaping @Sendable (SplicedBody) -> Void,
                        completion: @escaping @Sendable (Result<ReadResult?, FSError>) -> Void) {
        let delivered: @Sendable (SplicedBody) -> Void = { [metrics] body in
            // Delivered means downloaded: only the reply is left.
            if case .memory = body { metrics.add(metrics.streamedReadsCopied) }
            reply(body)
        }
        let finished: @Sendable (Result<Int, FSError>) -> Void = { [self] result in
            switch result {
            case let .success(count):
                metrics.add(metrics.streamedReads)
                metrics.add(metrics.bytesFromCluster, Int64(count))
                metrics.observeRead(seconds: Self.seconds(ContinuousClock.now - stream.started))
                completion(.success(nil))
            case let .failure(error):
                let sequence = progress.withLock { p in
                    p.streamFailed = true
                    defer { p.sequence = nil }
                    return p.sequence
                }
                sequence?.close()
                logger.warning("streamed read of \(ref.id) at \(stream.offset) failed (\(error)); reading it through the blocks")
                Task {
                    do throws(FSError) { completion(.success(try await throughBlocks(offset: stream.offset, size: stream.length))) } catch {
                        completion(.failure(error))
                    }
                }
            }
        }
        if let sequence = sequence(at: stream.offset),
           sequence.enqueue(offset: stream.offset, length: stream.length, deliver: delivered, completion: finished) {
            return
        }
        metrics.add(metrics.streamedDownloads)
        store.fetcher.stream(ref, offset: stream.offset, length: stream.length, deliver: delivered, completion: finished)
    }

    /// This handle's download for its streamed READs, opened with the first one (at `offset`)
    /// once the file's storages are known, and again at `offset` after it sat idle
    /// (``SequentialStream/isStale``).
    private func sequence(at offset: Int64) -> SequentialStream? {
        // Closed outside the lock (and before another opens: it holds one of the places).
        progress.withLock { p -> SequentialStream? in
            guard let sequence = p.sequence, sequence.isStale else { return nil }
            p.sequence = nil
            return sequence
        }?.close()
        return progress.withLock { p in
            if p.sequence == nil, !p.streamFailed, let opened = store.fetcher.openStream(ref, offset: offset) {
                metrics.add(metrics.streamedDownloads)
                p.sequence = opened
            }
            return p.sequence
        }
    }

    /// The handle closed: its download, if any, stops.
    public func stop() {
        progress.withLock { p in
            defer { p.sequence = nil }
            return p.sequence
        }?.close()
    }

    /// ``deliver(_:reply:completion:)``, awaited.
    public func deliver(_ stream: StreamedRead, reply: @escaping @Sendable (SplicedBody) -> Void) async throws(FSError) -> ReadResult? {
        try await withCheckedContinuation { (continuation: CheckedContinuation<Result<ReadResult?, FSError>, Never>) in
            deliver(stream, reply: reply) { continuation.resume(returning: $0) }
        }.get()
    }

    /// A whole READ through the blocks (cache, fetches, read-ahead).
    private func throughBlocks(offset: Int64, size: Int) async throws(FSError) -> ReadResult {
        switch try read(offset: offset, size: size) {
        case let .done(result): return result
        case let .pending(pending): return try await complete(pending)
        case .spliced, .streamed: throw FSError(.io, "unexpected splice")
        }
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
    /// The bytes go from a storage through a pipe: finish with ``FileReader/deliver(_:reply:)``
    /// (only when the caller asked for splicing).
    case streamed(StreamedRead)
}

/// A READ streamed from a storage through a pipe (``ReadProgress/streamed(_:)``).
public struct StreamedRead: Sendable {
    let reader: FileReader
    public let offset: Int64
    public let length: Int
    let started: ContinuousClock.Instant
}

/// The blocks a handle's streamed READs touched lately: the last ``limit`` of them.
struct RecentBlocks: Sendable {
    static let limit = 64
    private var blocks: [Int] = []

    func contains(_ index: Int) -> Bool { blocks.contains(index) }

    /// Adds `index` unless it is there already.
    mutating func insert(_ index: Int) {
        guard !contains(index) else { return }
        if blocks.count == Self.limit { blocks.removeFirst() }
        blocks.append(index)
    }
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
