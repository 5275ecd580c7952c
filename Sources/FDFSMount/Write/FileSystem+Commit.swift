import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// FLUSH and the commit: the spool (or the stream, or the changes in place) is uploaded,
/// then the name is committed in the mapping store.
extension FDFSFileSystem {
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
    /// `.done` when the handle has nothing to upload (read-only, unchanged, or its name gone).
    public func flush(_ ino: UInt64, handle fh: UInt64) -> Answer<Void> {
        guard let handle = handles[fh], handle.writable, let write = handle.spool, !write.on({ $0.flushIsNoop }) else { return .done(()) }
        return .needsCluster { () async throws(FSError) in try await self.commit(write) }
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
        let action = write.on { $0.commitStarted() }
        guard case .upload(let plan) = action else { return try runNow(action, for: write) }
        do throws(FSError) {
            try await upload(write, plan)
        } catch {
            write.on { $0.commitAborted() } // unless the upload itself failed (then it is retrying)
            throw error
        }
    }

    /// Carries out `.upload(plan)`: the upload, then the commit. Reports how it ended to the
    /// lifecycle (name gone, upload failed, committed); a thrown mapping-store error leaves
    /// the lifecycle to ``commit(_:)``.
    func upload(_ write: WriteState, _ plan: UploadPlan<UploadStream>) async throws(FSError) {
        // The stream is either handed to finishStream (which commits or discards it) or, on
        // every other way out, discarded here.
        var streamHandedOver = false
        defer { if !streamHandedOver, let stream = plan.stream { discard(stream) } }
        if isMetadataOnly(plan) { return try await commitEmpty(write, plan) }
        guard let entry = try store.entry(write.ino), entry.kind == .file, !entry.isDetached else {
            write.on { $0.nameGone() }
            return
        }
        let (upload, path) = try uploadTarget(entry)
        var inPlace = false
        if options.appendable, let base = plan.base?.fileID, base == entry.fileID, let baseID = try? FileID(base), baseID.kind == .appender {
            inPlace = true
        }
        let t0 = ContinuousClock.now
        var pendingID = try store.beginUpload(ino: write.ino, spool: write.path, size: plan.size, oldFileID: entry.fileID, inPlace: inPlace)
        let t1 = ContinuousClock.now
        let newID: FileID
        var streamed: FileID?
        do throws(FSError) {
            if inPlace, let base = plan.base, let baseID = try? FileID(base.fileID) {
                do throws(FSError) {
                    _ = try await appenderSource(baseID)
                    try await updateInPlace(baseID, write: write, size: plan.size, base: base)
                    newID = baseID
                } catch {
                    // Not resumed later (an APPEND that landed would be sent twice) and never
                    // sent to another member (its copy may be older): the whole spool becomes a
                    // new appender file, and the old one is deleted after the commit.
                    logger.warning("in-place update of \(path) (\(baseID)) failed: \(error); uploading the whole file as a new appender file")
                    write.on { $0.inPlaceFellBack(from: base.fileID) }
                    inPlace = false
                    try store.dropPending(pendingID)
                    pendingID = try store.beginUpload(ino: write.ino, spool: write.path, size: plan.size, oldFileID: entry.fileID, inPlace: false)
                    newID = try await cluster.upload(filePath: write.path, options: upload)
                }
            } else {
                var finished: (FileID, FileID)?
                if let stream = plan.stream {
                    streamHandedOver = true
                    finished = await finishStream(stream, size: plan.size, path: path)
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
            write.on { $0.uploadFailed() }
            if entry.mtime != plan.mtime || entry.ctime < plan.changed {
                // The name shows the time of the write even while its upload waits for a retry.
                var changed = entry
                changed.mtime = plan.mtime
                changed.ctime = max(entry.ctime, plan.changed)
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
        let generated = generatedParent.map { generatedEntry(parent: $0, id: newID, size: plan.size, time: plan.mtime / 1_000_000_000) }
        let orphan: String?
        do {
            (_, orphan) = try store.commitUpload(pending: pendingID, ino: write.ino, newID: newID.description, size: plan.size, mtime: plan.mtime,
                                                 ctime: plan.changed, generatedParent: generatedParent, generated: generated, queueDeletion: !options.keepReplaced)
        } catch {
            if error.code == .notFound {
                // The name went away during the upload: the new file belongs to nobody.
                write.on { $0.nameGone() }
                if !inPlace { try? await cluster.delete(newID) }
                return
            }
            throw error
        }
        if inPlace { cache.dropAll(prefix: FileRef.keyPrefix(newID)) }
        let keepsAppender = options.appendable && newID.kind == .appender
        write.on { $0.uploadCommitted(plan, as: newID.description, appender: keepsAppender) }
        metrics.add(metrics.uploads)
        if streamed != nil { metrics.add(metrics.streamedUploads) }
        metrics.add(metrics.uploadedBytes, plan.size)
        backgroundWork.uploadCommitted()
        logger.debug("committed \(path) -> \(newID) (\(plan.size) bytes): journal \(t1 - t0), upload \(t2 - t1), materialize \(t3 - t2), commit \(ContinuousClock.now - t3)")
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
}
