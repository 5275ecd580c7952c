import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension FDFSFileSystem {
    // MARK: Write states

    /// Installs a write state (or returns the one another request installed first).
    func install(_ write: WriteState, addHandle: Bool) -> WriteState {
        let (result, duplicate) = state.withLock { s -> (WriteState, Bool) in
            if let existing = s.writes[write.ino] {
                if addHandle { existing.handles += 1 }
                return (existing, true)
            }
            s.writes[write.ino] = write
            if addHandle { write.handles += 1 }
            return (write, false)
        }
        if duplicate {
            close(write.fd)
            Glibc.unlink(write.path)
            spool.release(write.reserved)
        }
        return result
    }

    func writeStateEmpty(ino: UInt64, dirty: Bool, mtime: Int64) throws(FSError) -> WriteState {
        let (path, fd) = try spool.create(ino: ino)
        return install(WriteState(ino: ino, path: path, fd: fd, size: 0, dirty: dirty, mtime: mtime), addHandle: true)
    }

    /// A write state over an existing spool file (a pending upload found after a restart).
    func adoptSpool(ino: UInt64, path: String, dirty: Bool, mtime: Int64, addHandle: Bool = true) throws(FSError) -> WriteState {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.posix("open spool \(path)") }
        var info = stat()
        fstat(fd, &info)
        let size = Int64(info.st_size)
        spool.adopt(bytes: size)
        return install(WriteState(ino: ino, path: path, fd: fd, size: size, dirty: dirty, mtime: mtime), addHandle: addHandle)
    }

    /// The write state for opening `entry` for writing: the current one, an empty spool
    /// (O_TRUNC, or nothing committed yet), or a copy of the committed content. Nothing is
    /// committed for a file that was unlinked while open.
    func writeState(for entry: Entry, truncate: Bool) async throws(FSError) -> WriteState {
        let write = try await acquireWriteState(for: entry, truncate: truncate)
        state.withLock { _ in
            if entry.isDetached { write.orphaned = true }
            write.privilegeBits = Self.privilegeBits(entry.mode)
            // O_TRUNC changed the content now (a new spool starts with mtime now).
            if truncate { write.changed = max(write.changed, write.mtime) }
        }
        return write
    }

    func acquireWriteState(for entry: Entry, truncate: Bool) async throws(FSError) -> WriteState {
        let ino = entry.ino
        if let existing = state.withLock({ s -> WriteState? in
            guard let w = s.writes[ino] else { return nil }
            w.handles += 1
            return w
        }) {
            if truncate { try resize(existing, to: 0) }
            return existing
        }
        if truncate || entry.fileID == nil {
            if !truncate, let pending = try store.pendingUploads().last(where: { $0.ino == ino }) {
                return try adoptSpool(ino: ino, path: pending.spool, dirty: true, mtime: entry.mtime)
            }
            let write = try writeStateEmpty(ino: ino, dirty: truncate || entry.state == Entry.provisional, mtime: truncate ? POSIX.nowNanoseconds() : entry.mtime)
            return write
        }
        // Copy-on-write: the spool starts as the committed content.
        let ref = try await fileRef(entry)
        try spool.reserve(ref.size)
        let created: (path: String, fd: Int32)
        do { created = try spool.create(ino: ino) } catch {
            spool.release(ref.size)
            throw error
        }
        do {
            try await copy(ref, to: created.fd)
        } catch {
            close(created.fd)
            Glibc.unlink(created.path)
            spool.release(ref.size)
            throw error
        }
        let write = WriteState(ino: ino, path: created.path, fd: created.fd, size: ref.size, dirty: false, mtime: entry.mtime)
        write.reserved = ref.size
        write.baseFileID = entry.fileID
        write.baseSize = ref.size
        return install(write, addHandle: true)
    }

    /// Sets the spool size (truncate or extend), with the spool cap checked first.
    func resize(_ write: WriteState, to size: Int64) throws(FSError) {
        let growth = state.withLock { _ in max(0, size - write.reserved) }
        try spool.reserve(growth)
        guard ftruncate(write.fd, off_t(size)) == 0 else {
            spool.release(growth)
            throw FSError.posix("truncate spool")
        }
        let stream = state.withLock { _ -> UploadStream? in
            write.reserved += growth
            write.size = size
            write.dirty = true
            write.generation += 1
            write.mtime = POSIX.nowNanoseconds()
            write.changed = write.mtime
            write.truncatedTo = min(write.truncatedTo, size)
            defer { write.stream = nil }
            return write.stream
        }
        if let stream { discard(stream) }
    }

    // MARK: Write

    /// WRITE: lands in the spool (synchronous, local disk only). The spool cap is checked
    /// before the bytes are written: ENOSPC when it would be exceeded. `caller` is the writer.
    public func write(_ fh: UInt64, offset: Int64, bytes: UnsafeRawBufferPointer, caller: Caller = .root) throws(FSError) -> Int {
        guard let handle = state.withLock({ $0.handles[fh] }) else { throw FSError(.badHandle) }
        guard handle.writable, let write = handle.spool else { throw FSError(.badHandle, "not open for writing") }
        let end = offset + Int64(bytes.count)
        let growth = state.withLock { _ -> Int64 in
            let g = max(0, end - write.reserved)
            write.reserved += g // taken now; given back below if the cap refuses
            return g
        }
        do { try spool.reserve(growth) } catch {
            state.withLock { _ in write.reserved -= growth }
            recordWriteFailure(write, error)
            throw error
        }
        guard bytes.count == 0 || POSIX.pwriteAll(write.fd, bytes.baseAddress!, bytes.count, offset) else {
            let error = FSError.posix("write spool")
            recordWriteFailure(write, error)
            throw error
        }
        let (stream, clearsPrivilege) = state.withLock { _ -> (UploadStream?, Bool) in
            if offset == 0, write.size == 0, write.stream == nil, write.baseFileID == nil, options.streamThreshold > 0 {
                write.stream = makeStream(for: write)
            }
            write.size = max(write.size, end)
            write.dirty = true
            write.generation += 1
            write.mtime = POSIX.nowNanoseconds()
            write.changed = write.mtime
            if write.baseFileID != nil {
                if write.written.count < 4096 { write.written.append(offset..<end) } else { write.written = [0..<Int64.max] }
            }
            return (write.stream, write.privilegeBits != 0 && !Self.keepsPrivilegeBits(caller))
        }
        stream?.wrote(offset: offset, end: end)
        if clearsPrivilege {
            do throws(FSError) { try clearPrivilegeBits(write.ino) } catch {
                logger.error("cannot clear the set-ID bits of inode \(write.ino) after a write by uid \(caller.uid): \(error)")
            }
        }
        return bytes.count
    }

    // MARK: Streamed uploads

    /// A stream for a new file's spool: its first bytes go where the commit would upload them,
    /// and the appender file is journaled (deleted after a crash) as soon as it exists.
    func makeStream(for write: WriteState) -> UploadStream {
        let ino = write.ino
        let target = UploadStream.Target(
            options: { [self] () throws(FSError) -> UploadOptions in
                guard let entry = try store.entry(ino) else { throw FSError(.notFound, "inode \(ino) is gone") }
                return try uploadTarget(entry).options
            },
            started: { [store] (id: FileID) throws(FSError) in try store.streamStarted(id.description, ino: ino) })
        let threshold = options.streamThreshold
        return UploadStream(spoolDescriptor: write.fd, threshold: threshold, step: max(64 << 10, min(8 << 20, threshold / 2)), cluster: cluster, target: target)
    }

    /// Ends a stream that will not be committed: its appender file, if any, is deleted.
    func discard(_ stream: UploadStream) {
        stream.breakOff()
        Task {
            await stream.stopped()
            guard let id = stream.fileID else { return }
            do throws(FSError) { try store.streamEnded(id.description, abandoned: true) } catch {
                logger.warning("cannot journal the deletion of \(id): \(error)")
            }
            await deleteFromCluster(id.description)
        }
    }

    /// Where a file is uploaded: its group (and store path when written under `Mxx`) and the
    /// extension of its name; also its path for messages.
    func uploadTarget(_ entry: Entry) throws(FSError) -> (options: UploadOptions, path: String) {
        let chain = try store.ancestry(entry.ino)
        guard let groupRow = chain.first, groupRow.kind == .group else { throw FSError(.io, "inode \(entry.ino) is not under a group") }
        var storePathIndex: Int8?
        if chain.count > 2, chain[1].kind == .storePath, let index = Int(chain[1].name.dropFirst(), radix: 16), index < 128 {
            storePathIndex = Int8(index)
        }
        let options = UploadOptions(group: groupRow.name, storePathIndex: storePathIndex, fileExtension: Self.fileExtension(entry.name),
                                    appender: self.options.appendable)
        return (options, chain.map(\.name).joined(separator: "/"))
    }

    /// FLUSH (every close of a descriptor) and FSYNC: uploads what was written and commits
    /// the name; the caller's close() gets the result.
    public func flush(_ ino: UInt64, handle fh: UInt64) async throws(FSError) {
        guard let handle = state.withLock({ $0.handles[fh] }), handle.writable, let write = handle.spool else { return }
        try await commit(write)
    }

    // MARK: Upload and commit

    /// The extension recorded in the generated name: the name's own (1–6 characters of
    /// [A-Za-z0-9_-]); for rsync's temporary names `.NAME.XXXXXX`, the extension of NAME.
    static func fileExtension(_ name: String) -> String {
        var base = Substring(name)
        if base.hasPrefix("."), let dot = base.lastIndex(of: "."), dot != base.startIndex,
           base.distance(from: dot, to: base.endIndex) == 7 {
            base = base[base.index(after: base.startIndex)..<dot]
        }
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return "" }
        let ext = base[base.index(after: dot)...]
        guard (1...6).contains(ext.count), ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else { return "" }
        return String(ext)
    }

    /// Metadata carried by each uploaded file: its path, mode and mtime.
    func uploadMetadata(path: String, entry: Entry, mtime: Int64) -> FDFSMetadata {
        var metadata = FDFSMetadata()
        var clean = String(path.unicodeScalars.map { $0.value < 3 ? "?" : Character($0) })
        while clean.utf8.count > FDFSMetadata.maxValueLength { clean.removeFirst() }
        try? metadata.set("path", clean)
        try? metadata.set("mode", String(entry.mode & 0o7777, radix: 8))
        try? metadata.set("mtime", "\(mtime / 1_000_000_000).\(String(format9(mtime % 1_000_000_000)))")
        return metadata
    }

    func format9(_ value: Int64) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 9 - text.count)) + text
    }

    /// Uploads the spool (or, for appender files in appendable mode, sends the changes in
    /// place), then commits the name in the mapping store. Serialised per file.
    func commit(_ write: WriteState) async throws(FSError) {
        await write.lock.lock()
        defer { write.lock.unlock() }
        let (snap, stream) = state.withLock { _ in
            defer { write.stream = nil } // a later change starts over from the spool
            return ((dirty: write.dirty, failed: write.failed, generation: write.generation, size: write.size, orphaned: write.orphaned,
                     base: write.baseFileID, baseSize: write.baseSize, written: write.written, truncatedTo: write.truncatedTo, mtime: write.mtime,
                     changed: write.changed, writeFailure: write.writeFailure),
                    write.stream)
        }
        // The stream is either handed to finishStream (which commits or discards it) or, on
        // every other way out, discarded here.
        var streamHandedOver = false
        defer { if !streamHandedOver, let stream { discard(stream) } }
        guard !snap.orphaned else { return }
        // A failed write left the content short: every flush says so, nothing is committed.
        if let failure = snap.writeFailure { throw failure }
        guard snap.dirty || snap.failed else { return }
        guard let entry = try store.entry(write.ino), entry.kind == .file, !entry.isDetached else {
            state.withLock { _ in write.orphaned = true }
            return
        }
        let (upload, path) = try uploadTarget(entry)
        var inPlace = false
        if options.appendable, let base = snap.base, base == entry.fileID, let baseID = try? FileID(base), baseID.kind == .appender {
            inPlace = true
        }
        let t0 = ContinuousClock.now
        var pendingID = try store.beginUpload(ino: write.ino, spool: write.path, size: snap.size, oldFileID: entry.fileID, inPlace: inPlace)
        let t1 = ContinuousClock.now
        let newID: FileID
        var streamed: FileID?
        do throws(FSError) {
            if inPlace, let base = snap.base, let baseID = try? FileID(base) {
                do throws(FSError) {
                    _ = try await appenderSource(baseID)
                    try await updateInPlace(baseID, write: write, size: snap.size, baseSize: snap.baseSize, written: snap.written, truncatedTo: snap.truncatedTo)
                    newID = baseID
                } catch {
                    // Not resumed later (an APPEND that landed would be sent twice) and never
                    // sent to another member (its copy may be older): the whole spool becomes a
                    // new appender file, and the old one is deleted after the commit.
                    logger.warning("in-place update of \(path) (\(baseID)) failed: \(error); uploading the whole file as a new appender file")
                    state.withLock { _ in if write.baseFileID == base { write.baseFileID = nil } }
                    inPlace = false
                    try store.dropPending(pendingID)
                    pendingID = try store.beginUpload(ino: write.ino, spool: write.path, size: snap.size, oldFileID: entry.fileID, inPlace: false)
                    newID = try await cluster.upload(filePath: write.path, options: upload)
                }
            } else {
                var finished: (FileID, FileID)?
                if let stream {
                    streamHandedOver = true
                    finished = await finishStream(stream, size: snap.size, path: path)
                }
                if let finished {
                    (streamed, newID) = finished
                } else {
                    // Metadata is written shortly after the commit (off close()'s path, and after
                    // rsync's rename, so it carries the final name); the commit journals it.
                    newID = try await cluster.upload(filePath: write.path, options: upload)
                }
            }
        } catch {
            metrics.add(metrics.uploadFailures)
            state.withLock { _ in write.failed = true }
            if entry.mtime != snap.mtime || entry.ctime < snap.changed {
                // The name shows the time of the write even while its upload waits for a retry.
                var changed = entry
                changed.mtime = snap.mtime
                changed.ctime = max(entry.ctime, snap.changed)
                try? store.update(changed)
            }
            logger.error("upload of \(path) failed: \(error); spooled data kept for a retry")
            // ENOENT here means "no storage for the group" (the name itself exists): EIO.
            throw error.code == .notFound ? FSError(.io, error.message) : error
        }
        let t2 = ContinuousClock.now
        try store.uploaded(pending: pendingID, fileID: newID.description)
        if let streamed { try store.streamEnded(streamed.description, abandoned: false) }
        let generatedParent = try? materializeDirectory(of: newID)
        let t3 = ContinuousClock.now
        let generated = generatedParent.map { generatedEntry(parent: $0, id: newID, size: snap.size, time: snap.mtime / 1_000_000_000) }
        let orphan: String?
        do {
            (_, orphan) = try store.commitUpload(pending: pendingID, ino: write.ino, newID: newID.description, size: snap.size, mtime: snap.mtime,
                                                 ctime: snap.changed, generatedParent: generatedParent, generated: generated, queueDeletion: !options.keepReplaced)
        } catch {
            if error.code == .notFound {
                // The name went away during the upload: the new file belongs to nobody.
                state.withLock { _ in write.orphaned = true }
                if !inPlace { try? await cluster.delete(newID) }
                return
            }
            throw error
        }
        if inPlace { cache.dropAll(prefix: FileRef.keyPrefix(newID)) }
        state.withLock { _ in
            if write.generation == snap.generation { write.dirty = false }
            write.failed = false
            write.written = []
            write.truncatedTo = .max
            if options.appendable, newID.kind == .appender {
                write.baseFileID = newID.description
                write.baseSize = snap.size
            } else {
                write.baseFileID = nil
            }
        }
        metrics.add(metrics.uploads)
        if streamed != nil { metrics.add(metrics.streamedUploads) }
        metrics.add(metrics.uploadedBytes, snap.size)
        state.withLock { $0.lastUpload = .now }
        logger.debug("committed \(path) -> \(newID) (\(snap.size) bytes): journal \(t1 - t0), upload \(t2 - t1), materialize \(t3 - t2), commit \(ContinuousClock.now - t3)")
        if let orphan { await deleteFromCluster(orphan) }
    }

    /// Completes a streamed upload: the tail is sent and (unless appendable) the appender file
    /// becomes a normal one. Returns the appender ID and the final ID, or nil when the spool
    /// must be uploaded instead (the stream never started, broke or failed; its appender
    /// file is then discarded).
    func finishStream(_ stream: UploadStream, size: Int64, path: String) async -> (FileID, FileID)? {
        guard let appender = await stream.finish(size: size) else {
            if let failure = stream.failure { logger.warning("streamed upload of \(path) failed (\(failure)); uploading the spooled file") }
            discard(stream)
            return nil
        }
        if options.appendable { return (appender, appender) }
        do throws(FSError) {
            return (appender, try await cluster.regenerate(appender))
        } catch {
            logger.warning("cannot turn \(appender) into a normal file (\(error)); uploading the spooled file of \(path)")
            discard(stream)
            return nil
        }
    }

    /// Appendable mode: brings an appender file to the spool's content with TRUNCATE, MODIFY
    /// of the ranges written below the old end, and APPEND of what lies beyond it.
    func updateInPlace(_ id: FileID, write: WriteState, size: Int64, baseSize: Int64, written: [Range<Int64>], truncatedTo: Int64) async throws(FSError) {
        var base = baseSize
        if size < base || truncatedTo < base {
            base = min(size, truncatedTo)
            try await cluster.truncate(id, size: base)
        }
        let step: Int64 = 4 << 20
        func bytes(_ offset: Int64, _ length: Int64) throws(FSError) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(Int(length))
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(length)) { pointer in
                max(0, POSIX.preadAll(write.fd, pointer.baseAddress!, Int(length), offset))
            }
            guard n == Int(length) else { throw FSError(.io, "short spool read") }
            return buffer
        }
        for range in Self.merge(written) {
            let lower = max(0, range.lowerBound), upper = min(range.upperBound, base)
            var offset = lower
            while offset < upper {
                let length = min(step, upper - offset)
                try await cluster.modify(id, offset: offset, try bytes(offset, length))
                offset += length
            }
        }
        var offset = base
        while offset < size {
            let length = min(step, size - offset)
            try await cluster.append(id, try bytes(offset, length))
            offset += length
        }
    }

    static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        var result: [Range<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }

    // MARK: Cluster metadata

    /// Journals a metadata rewrite (mode or mtime changed).
    func scheduleMetadata(_ fileID: String?, ino: UInt64) {
        guard let fileID else { return }
        do throws(FSError) { try store.markMetadataDue(fileID, ino: ino) } catch {
            logger.warning("cannot journal the metadata of \(fileID): \(error)")
        }
    }

    /// Uploads within this long hold back journaled metadata writes…
    static let metadataQuietPeriod: Duration = .seconds(1)
    /// …unless the oldest one has waited this long.
    static let metadataMaxDelay: Duration = .seconds(30)

    /// Is the mount in a burst of uploads (and the metadata journal not too old to wait)?
    func uploadsBusy(oldestMarked: Int64) -> Bool {
        guard let last = state.withLock({ $0.lastUpload }), ContinuousClock.now - last < Self.metadataQuietPeriod else { return false }
        let waited = POSIX.nowNanoseconds() - oldestMarked
        return waited < Self.metadataMaxDelay.components.seconds * 1_000_000_000
    }

    /// Writes the metadata (path, mode, mtime) of recently committed, renamed or changed
    /// files, from the journal; changes within one pass are coalesced into one SET_METADATA
    /// per file. With `whenQuiet`, the writes wait while uploads are being committed (a
    /// SET_METADATA per file competes with the uploads for the storage: measured ~0.9 ms
    /// more per 16 KiB file during `cp -r`), for at most ``metadataMaxDelay``; the journal
    /// keeps them safe meanwhile.
    public func writeMetadata(whenQuiet: Bool = false) async {
        guard let due = try? store.metadataDue(), let oldest = due.first else { return }
        if whenQuiet && uploadsBusy(oldestMarked: oldest.marked) { return }
        var done: [MappingStore.MetadataDue] = []
        for item in due {
            if whenQuiet && uploadsBusy(oldestMarked: item.marked) { break }
            guard let entry = try? store.entry(item.ino), entry.kind == .file, entry.fileID == item.fileID, let id = try? FileID(item.fileID),
                  let path = try? store.path(item.ino) else {
                done.append(item) // the name moved on to another file, or is gone
                continue
            }
            do {
                try await cluster.setMetadata(id, uploadMetadata(path: path, entry: entry, mtime: entry.mtime), merge: false)
                done.append(item)
            } catch {
                if error.code == .notFound {
                    done.append(item)
                } else {
                    logger.warning("cannot write the metadata of \(id): \(error); will retry")
                }
            }
        }
        do throws(FSError) { try store.metadataWritten(done) } catch {
            logger.warning("cannot clear the metadata journal: \(error)")
        }
    }

    // MARK: Cluster deletions

    /// Deletes a file no name refers to any more (queued in the deletions journal by the
    /// commit that orphaned it). Waits for open handles on it; failures stay in the journal
    /// and are retried; a file deleted meanwhile (by the background pass) is not asked twice.
    func deleteFromCluster(_ text: String) async {
        let skip = state.withLock { s -> Bool in
            if (s.openIDs[text] ?? 0) > 0 {
                s.deferredDeletes.insert(text)
                return true
            }
            return !s.deleting.insert(text).inserted
        }
        if skip { return }
        defer { state.withLock { _ = $0.deleting.remove(text) } }
        guard (try? store.deletionQueued(text)) != false else { return }
        guard let id = try? FileID(text) else {
            try? store.deleted(text)
            return
        }
        do {
            try await cluster.delete(id)
            metrics.add(metrics.clusterDeletes)
        } catch {
            if error.code != .notFound {
                logger.warning("cannot delete \(id) from the cluster (\(error)); will retry")
                return
            }
        }
        try? store.deleted(text)
        cache.dropAll(prefix: FileRef.keyPrefix(id))
    }

    func processDeletions() async {
        guard let list = try? store.deletions() else { return }
        for id in list { await deleteFromCluster(id) }
    }

    // MARK: Namespace changes

    func checkWritable() throws(FSError) {
        if options.readOnly { throw FSError(.readOnly) }
    }

    /// Can users create `name` in `dir`?
    func checkCreatable(_ dir: Entry, _ name: String) async throws(FSError) {
        try checkWritable()
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if dir.kind == .root { throw FSError(.notPermitted, "groups come from the tracker") }
        if try store.child(dir.ino, name) != nil { throw FSError(.exists) }
        if dir.kind.isSynthetic, await syntheticChild(dir, name) != nil { throw FSError(.exists) }
        if dir.kind == .subdirLow, let path = dir.fileID, let slash = path.firstIndex(of: "/"),
           (try? FileID(group: String(path[..<slash]), remoteFilename: String(path[path.index(after: slash)...]) + "/" + name)) != nil {
            throw FSError(.notPermitted, "generated names are reserved")
        }
    }

    func newEntry(parent: UInt64, name: String, kind: EntryKind, mode: UInt32, caller: Caller) -> Entry {
        let now = POSIX.nowNanoseconds()
        return Entry(ino: 0, parent: parent, name: name, kind: kind, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid,
                     atime: now, mtime: now, ctime: now, size: 0, fileID: nil, target: nil,
                     state: kind == .file ? Entry.provisional : Entry.committed)
    }

    /// CREATE: a provisional name (visible at once) and an empty spool; the upload happens at
    /// close.
    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: Caller) async throws(FSError) -> (EntryReply, OpenReply) {
        let dir = try entry(parent)
        try await checkCreatable(dir, name)
        return try createChecked(parent: parent, name: name, mode: mode, flags: flags, caller: caller)
    }

    public func mkdir(parent: UInt64, name: String, mode: UInt32, caller: Caller) async throws(FSError) -> EntryReply {
        let dir = try entry(parent)
        try await checkCreatable(dir, name)
        return reply(try store.create(newEntry(parent: parent, name: name, kind: .directory, mode: mode, caller: caller)))
    }

    public func symlink(parent: UInt64, name: String, target: String, caller: Caller) async throws(FSError) -> EntryReply {
        let dir = try entry(parent)
        try await checkCreatable(dir, name)
        var row = newEntry(parent: parent, name: name, kind: .symlink, mode: 0o777, caller: caller)
        row.target = target
        row.size = Int64(target.utf8.count)
        return reply(try store.create(row))
    }

    /// The user entry `name` in `parent` as its name row (a hard link is a row of its own)
    /// and as the inode it names, or the right error for what stands there instead.
    func userName(_ parent: UInt64, _ name: String) async throws(FSError) -> (name: Entry, inode: Entry) {
        let dir = try entry(parent)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if let row = try store.nameRow(parent, name) {
            guard let inode = try store.child(parent, name), inode.kind.isUser else { throw FSError(.notPermitted, "\(name) is not a user entry") }
            return (row, inode)
        }
        if dir.kind.isSynthetic, await syntheticChild(dir, name) != nil { throw FSError(.notPermitted) }
        throw FSError(.notFound)
    }

    public func unlink(parent: UInt64, name: String) async throws(FSError) {
        try checkWritable()
        let (nameRow, row) = try await userName(parent, name)
        if row.kind == .directory { throw FSError(.isDirectory) }
        // One of several names: the inode, its content and its descriptors are untouched.
        if try store.dropName(nameRow) { return }
        if row.kind == .file, isOpen(row.ino) {
            try await detachOpenFile(row.ino, .unlinked)
            return
        }
        let orphan = try store.remove(row.ino, queueDeletion: true)
        orphanWrite(row.ino)
        if let orphan { await deleteFromCluster(orphan) }
    }

    /// The name of a file being written went away: nothing to commit any more.
    func orphanWrite(_ ino: UInt64) {
        guard let write = state.withLock({ s -> WriteState? in
            guard let w = s.writes[ino] else { return nil }
            w.orphaned = true
            return w
        }) else { return }
        releaseIfIdle(write)
    }

    public func rmdir(parent: UInt64, name: String) async throws(FSError) {
        try checkWritable()
        let row = try await userName(parent, name).inode
        guard row.kind == .directory else { throw FSError(.notDirectory) }
        if try store.hasChildren(row.ino) { throw FSError(.notEmpty) }
        _ = try store.remove(row.ino, queueDeletion: false)
    }

    static let renameNoReplace: UInt32 = 1
    static let renameExchange: UInt32 = 2

    /// RENAME: metadata only (the file ID does not change), atomic in one transaction. A
    /// replaced file is deleted from the cluster after the commit unless keep_replaced.
    public func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32) async throws(FSError) {
        try checkWritable()
        guard newName.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        if flags & Self.renameExchange != 0 { throw FSError(.invalid, "RENAME_EXCHANGE is not supported") }
        let (sourceName, source) = try await userName(parent, name)
        let target = try entry(newParent)
        guard target.kind.isDirectory else { throw FSError(.notDirectory) }
        if target.kind == .root { throw FSError(.notPermitted) }
        let sourceChain = try store.ancestry(parent), targetChain = try store.ancestry(newParent)
        guard sourceChain.first?.ino == targetChain.first?.ino else { throw FSError(.crossDevice, "rename between groups") }
        if source.kind == .directory, newParent == source.ino || targetChain.contains(where: { $0.ino == source.ino }) {
            throw FSError(.invalid, "cannot move a directory into itself")
        }
        let existingName = try store.nameRow(newParent, newName)
        let existing = try store.child(newParent, newName)
        if existing == nil, target.kind.isSynthetic, await syntheticChild(target, newName) != nil { throw FSError(.notPermitted) }
        if existing == nil, target.kind == .subdirLow, let path = target.fileID, let slash = path.firstIndex(of: "/"),
           (try? FileID(group: String(path[..<slash]), remoteFilename: String(path[path.index(after: slash)...]) + "/" + newName)) != nil {
            throw FSError(.notPermitted, "generated names are reserved")
        }
        if let existing {
            if existing.ino == source.ino { return }
            if flags & Self.renameNoReplace != 0 { throw FSError(.exists) }
            guard existing.kind.isUser else { throw FSError(.notPermitted) }
            if existing.kind == .directory {
                guard source.kind == .directory else { throw FSError(.isDirectory) }
                if try store.hasChildren(existing.ino) { throw FSError(.notEmpty) }
            } else if source.kind == .directory {
                throw FSError(.notDirectory)
            }
        }
        // A replaced name that is not its inode's last takes nothing else with it.
        var lastName = false
        if let existingName, existingName.kind != .hardLink { lastName = try store.linkCount(existingName.ino) == 0 }
        let keepOpen = lastName && existing.map { $0.kind == .file && isOpen($0.ino) } ?? false
        let orphan = try store.rename(sourceName.ino, to: newParent, newName, replacing: existingName?.ino, queueDeletion: !options.keepReplaced,
                                      detachReplaced: keepOpen)
        if lastName, let existing { orphanWrite(existing.ino) }
        if keepOpen, let existing { await removeWhenClosed(existing.ino) }
        if let orphan { await deleteFromCluster(orphan) }
    }

    /// SETATTR: mode, owner and times change the mapping only; a size change goes through
    /// the spool (and is uploaded at once when no descriptor is open). `caller` asks.
    public func setattr(_ ino: UInt64, changes: AttributeChanges, caller: Caller = .root) async throws(FSError) -> EntryReply {
        var entry = try entry(ino)
        guard entry.kind.isUser else {
            if options.readOnly { throw FSError(.readOnly) }
            throw FSError(.notPermitted, "generated names and cluster directories cannot be changed")
        }
        try checkWritable()
        if let size = changes.size {
            guard entry.kind == .file else { throw FSError(entry.kind == .directory ? .isDirectory : .invalid) }
            guard size >= 0 else { throw FSError(.invalid) }
            // A size the spool can never hold is EFBIG; one that does not fit now is ENOSPC.
            guard size <= options.spoolSize else { throw FSError(.fileTooLarge, "\(size) bytes is more than spool_size") }
            let write = try await writeState(for: entry, truncate: size == 0)
            do throws(FSError) {
                try resize(write, to: size)
            } catch {
                state.withLock { _ in write.handles -= 1 }
                releaseIfIdle(write)
                throw error
            }
            let idle = state.withLock { _ -> Bool in
                write.handles -= 1
                return write.handles == 0
            }
            if idle {
                defer { releaseIfIdle(write) }
                try await commit(write)
            }
            entry = try self.entry(ino)
        }
        try applyAttributes(&entry, changes, caller: caller)
        return reply(entry)
    }

    // MARK: Recovery

    /// After a crash: finish (or adopt) pending uploads, drop names that were never
    /// acknowledged, remove stray spool files.
    func recover() async {
        do {
            let streams = try store.abandonStreams()
            if streams > 0 { logger.notice("recovery: \(streams) upload(s) streamed before the crash will be deleted from the cluster") }
            for pending in try store.pendingUploads() {
                let entry = try store.entry(pending.ino)
                guard let entry, entry.kind == .file, !entry.isDetached else {
                    try store.dropPending(pending.id)
                    if let new = pending.newFileID, !pending.inPlace, let id = try? FileID(new) {
                        logger.notice("recovery: deleting uncommitted upload \(id) (its name is gone)")
                        try? await cluster.delete(id)
                    }
                    Glibc.unlink(pending.spool)
                    continue
                }
                if let new = pending.newFileID, !pending.inPlace, let id = try? FileID(new) {
                    let parent = try? materializeDirectory(of: id)
                    let generated = parent.map { generatedEntry(parent: $0, id: id, size: pending.size, time: Int64(id.generated.timestamp)) }
                    let (_, orphan) = try store.commitUpload(pending: pending.id, ino: pending.ino, newID: new, size: pending.size,
                                                             generatedParent: parent, generated: generated, queueDeletion: !options.keepReplaced)
                    logger.notice("recovery: adopted uploaded \(id) for inode \(pending.ino)")
                    Glibc.unlink(pending.spool)
                    if let orphan { await deleteFromCluster(orphan) }
                } else if POSIX.fileSize(pending.spool) != nil {
                    _ = try adoptSpool(ino: pending.ino, path: pending.spool, dirty: true, mtime: entry.mtime, addHandle: false)
                    logger.notice("recovery: resuming the upload of inode \(pending.ino) from \(pending.spool)")
                } else {
                    logger.error("recovery: the pending upload of inode \(pending.ino) is lost (spool file \(pending.spool) missing)")
                    try store.dropPending(pending.id)
                    if entry.state == Entry.provisional { _ = try store.remove(entry.ino, queueDeletion: false) }
                }
            }
            for entry in try store.abandonedProvisional() where !entry.isDetached {
                logger.notice("recovery: removing '\(entry.name)' (inode \(entry.ino)), created but never closed before the crash")
                _ = try store.remove(entry.ino, queueDeletion: false)
            }
            try await removeDetachedLeftovers()
        } catch {
            logger.error("recovery failed: \(error)")
        }
        let kept = Set(state.withLock { $0.writes.values.map(\.path) })
        for file in spool.files() where !kept.contains(file) { Glibc.unlink(file) }
    }
}
