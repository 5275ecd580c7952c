import FDFSClient
import FDFSProtocol
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension FDFSFileSystem {
    // MARK: Open

    /// Opens a file. Generated names and committed files read from the cluster; files being
    /// written (or whose upload is pending) read from their spool. `caller` opens it.
    public func open(_ ino: UInt64, flags: Int32, caller: Caller = .root) async throws(FSError) -> OpenReply {
        let entry = try entry(ino)
        if entry.kind.isDirectory { throw FSError(.isDirectory) }
        guard entry.kind == .file || entry.kind == .generated else { throw FSError(.invalid) }
        let accessMode = flags & O_ACCMODE
        let wantsWrite = accessMode != O_RDONLY
        let truncate = wantsWrite && flags & O_TRUNC != 0
        if wantsWrite {
            if options.readOnly { throw FSError(.readOnly) }
            if entry.kind == .generated { throw FSError(.accessDenied, "generated names are read-only") }
            let write = try await writeState(for: entry, truncate: truncate)
            if truncate, !Self.keepsPrivilegeBits(caller) {
                do throws(FSError) { try clearPrivilegeBits(ino) } catch {
                    state.withLock { _ in write.handles -= 1 }
                    releaseIfIdle(write)
                    throw error
                }
            }
            return register(Handle(ino: ino, writable: true, ref: nil, spool: write, readAhead: readAhead()), keepCache: false,
                            directIO: writesBypassPageCache(flags))
        }
        if let write = state.withLock({ s -> WriteState? in
            guard let w = s.writes[ino] else { return nil }
            w.handles += 1
            return w
        }) {
            return register(Handle(ino: ino, writable: false, ref: nil, spool: write, readAhead: readAhead()), keepCache: false, counted: true)
        }
        if entry.kind == .file && entry.fileID == nil {
            // Provisional name whose upload is pending (after a restart): read its spool.
            if let pending = try store.pendingUploads().last(where: { $0.ino == ino }) {
                let write = try adoptSpool(ino: ino, path: pending.spool, dirty: true, mtime: entry.mtime)
                return register(Handle(ino: ino, writable: false, ref: nil, spool: write, readAhead: readAhead()), keepCache: false, counted: true)
            }
            let empty = try writeStateEmpty(ino: ino, dirty: false, mtime: entry.mtime)
            return register(Handle(ino: ino, writable: false, ref: nil, spool: empty, readAhead: readAhead()), keepCache: false, counted: true)
        }
        let ref = try await fileRef(entry)
        let handle = Handle(ino: ino, writable: false, ref: ref, spool: nil, readAhead: readAhead())
        if options.directReads { return register(handle, keepCache: false, directIO: true) }
        return register(handle, keepCache: ref.checkCRC)
    }

    func readAhead() -> ReadAhead {
        ReadAhead(blockSize: options.blockSize, maxWindow: options.readahead)
    }

    func register(_ handle: Handle, keepCache: Bool, counted: Bool = false, directIO: Bool = false) -> OpenReply {
        state.withLock { s in
            let fh = s.nextHandle
            s.nextHandle += 1
            s.handles[fh] = handle
            if let ref = handle.ref { s.openIDs[ref.id.description, default: 0] += 1 }
            return OpenReply(handle: fh, keepCache: keepCache, directIO: directIO)
        }
    }

    /// Write-only descriptors skip the kernel's page cache (FOPEN_DIRECT_IO): each write(2)
    /// reaches the spool without first being copied into page-cache pages of the mounted file
    /// that nobody reads. Such a descriptor cannot be mmapped anyway; descriptors that can
    /// read keep the page cache (and mmap).
    func writesBypassPageCache(_ flags: Int32) -> Bool {
        options.directWrites && flags & O_ACCMODE == O_WRONLY
    }

    /// The cluster file behind an entry; appender files are revalidated (size and mtime via
    /// QUERY_FILE_INFO) and get a cache key per version.
    func fileRef(_ entry: Entry) async throws(FSError) -> FileRef {
        guard let text = entry.fileID, let id = try? FileID(text) else { throw FSError(.io, "inode \(entry.ino) has no valid file ID") }
        switch id.kind {
        case .normal:
            return FileRef(id: id, size: id.generated.size)
        case .trunk:
            return FileRef(id: id, size: entry.size, version: "t")
        case .appender, .slave:
            let info: FileInfo
            if id.isPinnedToSource {
                info = try await cluster.fileInfo(id, on: try await appenderSource(id))
            } else {
                info = try await cluster.fileInfo(id)
            }
            let version = "\(info.size)-\(info.createTimestamp)"
            let previous = state.withLock { s -> String? in
                defer { s.appenderVersions[id.description] = version }
                return s.appenderVersions[id.description]
            }
            if let previous, previous != version {
                cache.dropAll(prefix: FileRef(id: id, size: 0, version: previous).cacheKey)
            }
            if info.size != entry.size {
                var updated = entry
                updated.size = info.size
                if entry.kind == .generated { updated.mtime = info.createTimestamp * 1_000_000_000 }
                try? store.update(updated)
            }
            var ref = FileRef(id: id, size: info.size, version: version)
            ref.checkCRC = false
            return ref
        }
    }

    public func release(_ ino: UInt64, handle fh: UInt64) async {
        let (handle, deletions, lastOfDetached) = state.withLock { s -> (Handle?, [String], Bool) in
            guard let handle = s.handles.removeValue(forKey: fh) else { return (nil, [], false) }
            var ready: [String] = []
            if let ref = handle.ref {
                let key = ref.id.description
                let count = (s.openIDs[key] ?? 1) - 1
                s.openIDs[key] = count > 0 ? count : nil
                if count <= 0, s.deferredDeletes.remove(key) != nil { ready.append(key) }
            }
            handle.spool?.handles -= 1
            return (handle, ready, Self.closesDetached(handle.ino, handle: fh, in: &s))
        }
        for id in deletions { await deleteFromCluster(id) }
        if lastOfDetached, let handle { await removeDetached(handle.ino) }
        guard let write = handle?.spool else { return }
        let (needsCommit, failed) = state.withLock { _ in
            (write.handles == 0 && write.dirty && !write.orphaned && write.writeFailure == nil, write.writeFailure != nil)
        }
        if failed {
            discardFailedWrite(write)
            return
        }
        if needsCommit {
            // Written but never flushed (mmap, or a flush that failed): upload now; on failure
            // the retrier keeps trying.
            do throws(FSError) { try await commit(write) } catch {
                logger.error("upload of inode \(ino) at release failed: \(error); will retry")
            }
        }
        releaseIfIdle(write)
    }

    /// Drops a write state (closing and removing its spool) once nothing needs it: no handle
    /// is open and nothing is left to commit, or its changes are to be discarded. Returns
    /// whether it was dropped.
    @discardableResult
    func releaseIfIdle(_ write: WriteState, discardingChanges: Bool = false) -> Bool {
        let (drop, stream) = state.withLock { s -> (Bool, UploadStream?) in
            guard write.handles == 0, discardingChanges || write.orphaned || (!write.dirty && !write.failed), s.writes[write.ino] === write else {
                return (false, nil)
            }
            s.writes[write.ino] = nil
            defer { write.stream = nil }
            return (true, write.stream)
        }
        guard drop else { return false }
        if let stream { discard(stream) }
        close(write.fd)
        Glibc.unlink(write.path)
        spool.release(write.reserved)
        return true
    }

    // MARK: Read

    /// The synchronous part of a READ: everything the spool or the block cache can serve.
    /// Starts read-ahead fetches. Call ``completeRead(_:)`` when it returns `.pending`.
    public func startRead(_ fh: UInt64, offset: Int64, size: Int) throws(FSError) -> ReadProgress {
        let started = ContinuousClock.now
        guard let handle = state.withLock({ $0.handles[fh] }) else { throw FSError(.badHandle) }
        if let write = handle.spool {
            let available = state.withLock { _ in write.size }
            let length = Int(max(0, min(Int64(size), available - offset)))
            let storage = ByteStorage(capacity: length)
            if length > 0 {
                let n = POSIX.preadAll(write.fd, storage.pointer, length, offset)
                guard n >= 0 else { throw FSError.posix("read spool") }
                storage.count = n
            }
            metrics.add(metrics.bytesFromSpool, Int64(storage.count))
            return .done(ReadResult(storage))
        }
        guard let ref = handle.ref else { throw FSError(.badHandle) }
        let length = Int(max(0, min(Int64(size), ref.size - offset)))
        let storage = ByteStorage(capacity: length)
        storage.count = length
        guard length > 0 else { return .done(ReadResult(storage)) }
        // Read-ahead first, so the fetches overlap with this request.
        let ahead = state.withLock { s -> Range<Int> in
            s.handles[fh]?.readAhead.record(offset: offset, length: Int64(length), fileSize: ref.size) ?? 0..<0
        }
        for index in ahead { fetcher.prefetch(ref, index) }
        let blockSize = Int64(options.blockSize)
        let first = Int(offset / blockSize), last = Int((offset + Int64(length) - 1) / blockSize)
        var missing: [Int] = []
        var crcs: [Int: UInt32] = [:]
        for index in first...last {
            let (start, count, destination) = slice(index, offset: offset, length: length, storage: storage)
            if let hit = cache.read(ref.blockKey(index), offset: start, length: count, into: destination) {
                crcs[index] = hit.blockCRC
                metrics.add(metrics.cacheHits)
                metrics.add(metrics.bytesFromCache, Int64(count))
            } else {
                missing.append(index)
            }
        }
        let pending = PendingRead(handle: fh, ref: ref, offset: offset, storage: storage, missing: missing, crcs: crcs, started: started)
        if missing.isEmpty {
            try finishRead(pending)
            return .done(ReadResult(storage))
        }
        return .pending(pending)
    }

    /// Where block `index` meets the request: offset within the block, byte count, and the
    /// destination in the reply buffer.
    func slice(_ index: Int, offset: Int64, length: Int, storage: ByteStorage) -> (Int, Int, UnsafeMutableRawPointer) {
        let blockSize = Int64(options.blockSize)
        let blockStart = Int64(index) * blockSize
        let from = max(offset, blockStart)
        let to = min(offset + Int64(length), blockStart + blockSize)
        return (Int(from - blockStart), Int(to - from), storage.pointer + Int(from - offset))
    }

    /// Fetches the blocks the cache did not have, then finishes the READ.
    public func completeRead(_ pending: PendingRead) async throws(FSError) -> ReadResult {
        var pending = pending
        var direct: ReadResult?
        for index in pending.missing {
            let (start, count, destination) = slice(index, offset: pending.offset, length: pending.storage.count, storage: pending.storage)
            // A read-ahead fetch may have landed meanwhile.
            if !fetcher.isInflight(pending.ref.blockKey(index)),
               let hit = cache.read(pending.ref.blockKey(index), offset: start, length: count, into: destination) {
                pending.crcs[index] = hit.blockCRC
                metrics.add(metrics.cacheHits)
                metrics.add(metrics.bytesFromCache, Int64(count))
                continue
            }
            let block = try await fetcher.fetch(pending.ref, index)
            guard start + count <= block.length else { throw FSError(.io, "short block \(index) of \(pending.ref.id)") }
            pending.crcs[index] = block.crc32
            if count == pending.storage.count {
                // The whole request lies in this block: reply from the block itself.
                direct = ReadResult(block.storage, offset: start, count: count)
            } else {
                destination.copyMemory(from: block.storage.pointer + start, byteCount: count)
            }
        }
        try finishRead(pending)
        return direct ?? ReadResult(pending.storage)
    }

    /// Records block CRCs for the whole-file check, and the latency.
    func finishRead(_ pending: PendingRead) throws(FSError) {
        metrics.observeRead(seconds: Self.seconds(ContinuousClock.now - pending.started))
        let ref = pending.ref
        guard ref.checkCRC else { return }
        let blockSize = Int64(options.blockSize)
        let blockCount = Int((ref.size + blockSize - 1) / blockSize)
        let complete = state.withLock { s -> [Int: UInt32]? in
            guard var handle = s.handles[pending.handle], !handle.crcChecked else { return nil }
            for (index, crc) in pending.crcs { handle.blockCRCs[index] = crc }
            defer { s.handles[pending.handle] = handle }
            guard handle.blockCRCs.count == blockCount else { return nil }
            handle.crcChecked = true
            let all = handle.blockCRCs
            handle.blockCRCs = [:]
            return all
        }
        guard let complete else { return }
        var crc: UInt32 = 0
        for index in 0..<blockCount {
            let length = min(blockSize, ref.size - Int64(index) * blockSize)
            crc = index == 0 ? complete[index]! : CRC32.combine(crc, complete[index]!, secondLength: length)
        }
        if crc != ref.id.generated.crc32 {
            metrics.add(metrics.crcMismatches)
            cache.dropAll(prefix: ref.cacheKey)
            logger.error("CRC32 mismatch reading \(ref.id): computed \(String(crc, radix: 16)), name says \(String(ref.id.generated.crc32, radix: 16)); cached blocks dropped")
            throw FSError(.io, "CRC32 mismatch for \(ref.id)")
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }

    /// A whole READ (sync part and fetches).
    public func read(_ fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> ReadResult {
        switch try startRead(fh, offset: offset, size: size) {
        case let .done(storage): return storage
        case let .pending(pending): return try await completeRead(pending)
        }
    }

    /// Reads `length` bytes of a cluster file into a local file descriptor (copy-on-write).
    func copy(_ ref: FileRef, to fd: Int32) async throws(FSError) {
        let blockSize = options.blockSize
        var offset: Int64 = 0
        var ahead = ReadAhead(blockSize: blockSize, maxWindow: options.readahead)
        while offset < ref.size {
            let length = Int(min(Int64(blockSize), ref.size - offset))
            for index in ahead.record(offset: offset, length: Int64(length), fileSize: ref.size) { fetcher.prefetch(ref, index) }
            let index = Int(offset / Int64(blockSize))
            let storage = ByteStorage(capacity: length)
            if cache.read(ref.blockKey(index), offset: 0, length: length, into: storage.pointer) == nil {
                let block = try await fetcher.fetch(ref, index)
                storage.pointer.copyMemory(from: block.storage.pointer, byteCount: length)
            }
            guard POSIX.pwriteAll(fd, storage.pointer, length, offset) else { throw FSError.posix("write spool") }
            offset += Int64(length)
        }
    }
}
