import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Recovery after a crash: pending uploads are adopted or resumed (a resumed spool is a
/// ``WriteLifecycle`` that starts dirty with no descriptor open, and the retrier uploads it).
/// The same recovery finishes the journal of a dead mount that this one took over
/// (FileSystem+Takeover.swift), with what its spool held lost.
extension FDFSFileSystem {
    /// After a crash: finish (or adopt) the pending uploads of `scope`, drop its names that were
    /// never acknowledged, remove its rows detached while open. An upload whose file ID was not
    /// recorded resumes from the spool when the spool is this mount's; otherwise it is lost,
    /// and its name goes if it never had content.
    func recover(_ scope: JournalScope) async {
        let local = scope.spoolIsLocal
        do {
            let streams = try store.abandonStreams(scope)
            if streams > 0 { logger.notice("recovery: \(streams) upload(s) streamed before the crash will be deleted from the cluster") }
            for pending in try store.pendingUploads(scope) {
                let entry = try store.entry(pending.ino)
                guard let entry, entry.kind == .file, !entry.isDetached else {
                    try store.dropPending(pending.id)
                    if let new = pending.newFileID, !pending.inPlace, let id = try? FileID(new) {
                        logger.notice("recovery: deleting uncommitted upload \(id) (its name is gone)")
                        try? await cluster.delete(id)
                    }
                    if local { Glibc.unlink(pending.spool) }
                    continue
                }
                if let new = pending.newFileID, !pending.inPlace, let id = try? FileID(new) {
                    let parent = try? materializeDirectory(of: id)
                    let generated = parent.map { generatedEntry(parent: $0, id: id, size: pending.size, time: Int64(id.generated.timestamp)) }
                    let (_, orphan) = try store.commitUpload(pending: pending.id, ino: pending.ino, newID: new, size: pending.size,
                                                             generatedParent: parent, generated: generated, queueDeletion: !options.keepReplaced)
                    logger.notice("recovery: adopted uploaded \(id) for inode \(pending.ino)")
                    if local { Glibc.unlink(pending.spool) }
                    if let orphan { await deleteFromCluster(orphan) }
                } else if local, POSIX.fileSize(pending.spool) != nil {
                    _ = try adoptSpool(ino: pending.ino, path: pending.spool, dirty: true, mtime: entry.mtime, addHandle: false)
                    logger.notice("recovery: resuming the upload of inode \(pending.ino) from \(pending.spool)")
                } else {
                    let why = local ? "spool file \(pending.spool) missing" : "its bytes were in the dead mount's spool"
                    logger.error("recovery: the pending upload of inode \(pending.ino) is lost (\(why)); the name keeps its last committed content")
                    try store.dropPending(pending.id)
                    if entry.state == Entry.provisional { _ = try store.remove(entry.ino, queueDeletion: false) }
                }
            }
            for entry in try store.abandonedProvisional(scope) where !entry.isDetached {
                logger.notice("recovery: removing '\(entry.name)' (inode \(entry.ino)), created but never closed before the crash")
                _ = try store.remove(entry.ino, queueDeletion: false)
            }
            try await removeDetachedLeftovers(scope)
        } catch {
            logger.error("recovery failed: \(error)")
            if !local { takeovers.failed() }
        }
    }

    /// Spool files no write state uses (at start, after recovery).
    func removeStraySpoolFiles() {
        let kept = Set(writes.all.map(\.path))
        for file in spool.files() where !kept.contains(file) { Glibc.unlink(file) }
    }
}
