/// Files unlinked (or replaced by a rename) while descriptors are open on them: as POSIX
/// says, the descriptors keep working (fstat shows no links, reads return the bytes, writes
/// land in the spool) and the file is removed, with its cluster file, when the last one
/// closes. Until then the row stays in the mapping store, detached from every directory
/// (``Entry/isDetached``), which also keeps its inode number from being reused.
extension FDFSFileSystem {
    func isOpen(_ ino: UInt64) -> Bool {
        handles.isOpen(ino)
    }

    /// Takes away the name of a file with open descriptors: its row is kept, detached, and
    /// removed when the last descriptor closes; nothing written through them is committed.
    func detachOpenFile(_ ino: UInt64, _ reason: DetachReason) async throws(FSError) {
        try store.detach(ino, reason)
        orphanWrite(ino)
        await removeWhenClosed(ino)
    }

    /// After `ino` was detached: marks it for removal at its last close, or removes it now
    /// if that close came first. Exactly one of the two paths removes it (both decide under
    /// the handle table's lock, see ``HandleTable/removeAtLastClose(_:)``).
    func removeWhenClosed(_ ino: UInt64) async {
        if handles.removeAtLastClose(ino) { await removeDetached(ino) }
    }

    /// Removes a detached row (its last descriptor closed) and deletes its cluster file when
    /// no name refers to it any more (for a replaced file, unless `keep_replaced`).
    func removeDetached(_ ino: UInt64) async {
        do throws(FSError) {
            guard let entry = try store.entry(ino), let reason = entry.detachReason else { return }
            let delete = reason == .unlinked || !options.keepReplaced
            if let orphan = try store.remove(ino, queueDeletion: delete) { await deleteFromCluster(orphan) }
        } catch {
            logger.error("cannot remove unlinked inode \(ino): \(error); the next mount removes it")
        }
    }

    /// After a restart (or the death of the mount that detached them) none of `scope`'s
    /// descriptors is open: its detached files are removed, at once or, if this mount has the
    /// inode open too, at its last close.
    func removeDetachedLeftovers(_ scope: JournalScope) async throws(FSError) {
        for entry in try store.detachedEntries(scope) {
            logger.notice("recovery: removing inode \(entry.ino), unlinked while open before the restart")
            await removeWhenClosed(entry.ino)
        }
    }
}
