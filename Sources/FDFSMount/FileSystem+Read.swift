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
                    closeUnregistered(write)
                    throw error
                }
            }
            return register(Handle(ino: ino, writable: true, spool: write), keepCache: false,
                            directIO: writesBypassPageCache(flags))
        }
        if let write = openedWriteState(ino) {
            return register(Handle(ino: ino, writable: false, spool: write), keepCache: false)
        }
        if entry.kind == .file && entry.fileID == nil {
            // Provisional name whose upload is pending (after a restart): read its spool.
            // Only this mount's journal names a spool that is here.
            if let pending = try store.pendingUploads(.own(sessionID, untagged: false)).last(where: { $0.ino == ino }) {
                let write = try adoptSpool(ino: ino, path: pending.spool, dirty: true, mtime: entry.mtime)
                return register(Handle(ino: ino, writable: false, spool: write), keepCache: false)
            }
            let empty = try writeStateEmpty(ino: ino, dirty: false, mtime: entry.mtime)
            return register(Handle(ino: ino, writable: false, spool: empty), keepCache: false)
        }
        let ref = try await fileRef(entry)
        let (fh, first) = handles.openCounting(Handle(ino: ino, reader: reader(ref)))
        if first { recordOpen(ref.id.description) }
        return OpenReply(handle: fh, keepCache: options.directReads ? false : ref.checkCRC, directIO: options.directReads)
    }

    func register(_ handle: Handle, keepCache: Bool, directIO: Bool = false) -> OpenReply {
        OpenReply(handle: handles.open(handle), keepCache: keepCache, directIO: directIO)
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
            if let previous = appenderVersions.note(id.description, version: version), previous != version {
                cache.dropAll(FileVersion(id, version: previous))
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

    /// RELEASE: `.done` when closing the handle needs no upload, no cluster deletion and no
    /// removal of a detached inode; otherwise the rest runs as `.needsCluster`.
    public func release(_ ino: UInt64, handle fh: UInt64) -> Answer<Void> {
        switch handles.closeQuickly(fh, recordingOpens: recordsOpens) {
        case .notOpen:
            return .done(())
        case .closed(let write):
            if let write { releaseIfIdle(write) }
            return .done(())
        case .needsWork:
            return .needsCluster { () async throws(FSError) in await self.closeHandle(fh) }
        }
    }

    /// Closes handle `fh`: deletions that waited for it, the removal of a detached inode, and
    /// what the last close of a written file decides (upload, discard, drop).
    func closeHandle(_ fh: UInt64) async {
        guard let closed = handles.close(fh) else { return }
        if let id = closed.lastOfFileID { recordClose(id) }
        for id in closed.deletions { await deleteFromCluster(id) }
        if closed.lastOfDetached { await removeDetached(closed.handle.ino) }
        if let write = closed.handle.spool { await released(write) }
    }

    // MARK: Read

    /// The synchronous part of a READ (answered on the libfuse thread when it is `.done`):
    /// spool reads, and whatever the handle's ``FileReader`` finds cached. Call
    /// ``completeRead(_:)`` when it returns `.pending`. `splice`: the caller can reply from a
    /// file descriptor (``ReadProgress/spliced(_:)``).
    public func startRead(_ fh: UInt64, offset: Int64, size: Int, splice: Bool = false) throws(FSError) -> ReadProgress {
        guard let handle = handles[fh] else { throw FSError(.badHandle) }
        if let write = handle.spool { return .done(try readSpool(write, offset: offset, size: size)) }
        guard let reader = handle.reader else { throw FSError(.badHandle) }
        return try reader.read(offset: offset, size: size, splice: splice)
    }

    /// Fetches the blocks the cache did not have, then finishes the READ.
    public func completeRead(_ pending: PendingRead) async throws(FSError) -> ReadResult {
        try await pending.reader.complete(pending)
    }

    /// A whole READ (sync part and fetches).
    public func read(_ fh: UInt64, offset: Int64, size: Int) async throws(FSError) -> ReadResult {
        switch try startRead(fh, offset: offset, size: size) {
        case let .done(storage): return storage
        case let .pending(pending): return try await completeRead(pending)
        case .spliced, .streamed: throw FSError(.io, "unexpected splice")
        }
    }

    /// Finishes a streamed READ (``FileReader/deliver(_:reply:completion:)``): `completion`
    /// gets nil once `reply` ran with the bytes, or a result when the READ fell back to the
    /// blocks.
    public func deliverRead(_ stream: StreamedRead, reply: @escaping @Sendable (SplicedBody) -> Void,
                            completion: @escaping @Sendable (Result<ReadResult?, FSError>) -> Void) {
        stream.reader.deliver(stream, reply: reply, completion: completion)
    }

    /// Reads from the spool of a file being written (or whose upload is pending).
    func readSpool(_ write: WriteState, offset: Int64, size: Int) throws(FSError) -> ReadResult {
        let available = write.size
        let length = Int(max(0, min(Int64(size), available - offset)))
        let storage = ByteStorage(capacity: length)
        if length > 0 {
            let n = POSIX.preadAll(write.fd, storage.pointer, length, offset)
            guard n >= 0 else { throw FSError.posix("read spool") }
            storage.count = n
        }
        metrics.add(metrics.bytesFromSpool, Int64(storage.count))
        return ReadResult(storage)
    }

    /// A reader for one open handle of a cluster file.
    /// Its READs stream only through the page cache: with `direct_io` the kernel reads no
    /// further ahead than the reader asks, so the mount's read-ahead is what keeps the network
    /// busy.
    func reader(_ ref: FileRef) -> FileReader {
        FileReader(ref: ref, store: blocks, maxWindow: options.readahead, metrics: metrics, logger: logger, mayStream: !options.directReads)
    }

    /// Reads a whole cluster file into a local file descriptor (copy-on-write).
    func copy(_ ref: FileRef, to fd: Int32) async throws(FSError) {
        try await reader(ref).copy(to: fd, maxWindow: options.readahead)
    }
}
