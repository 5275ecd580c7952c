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
extension FDFSFileSystem {
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
        let kept = Set(writes.all.map(\.path))
        for file in spool.files() where !kept.contains(file) { Glibc.unlink(file) }
    }
}
