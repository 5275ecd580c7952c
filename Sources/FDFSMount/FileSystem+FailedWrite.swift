/// A write that fails (the spool cap, `ENOSPC`, or a local I/O error) leaves the file's unsaved
/// content short of what its writer meant. Nothing short is committed: every later flush
/// (`close()`, `fsync`) of the file reports the write's error, and when its last descriptor
/// closes the unsaved changes are dropped. The name keeps its last committed content; a new
/// file that never had any is removed, like one created but never closed before a crash.
extension FDFSFileSystem {
    /// The last descriptor of a file whose write failed closed: drops its spool (and any
    /// upload journaled for it), and the name of a file that was never committed.
    func discardFailedWrite(_ write: WriteState) {
        guard releaseIfIdle(write, discardingChanges: true) else { return }
        let failure = write.on { $0.writeFailure?.description ?? "" }
        logger.warning("inode \(write.ino): a write failed (\(failure)); its unsaved changes are dropped, the last committed content stays")
        do throws(FSError) {
            try store.dropPendingUploads(ino: write.ino)
            if let entry = try store.entry(write.ino), entry.kind == .file, entry.state == Entry.provisional, entry.fileID == nil {
                _ = try store.remove(write.ino, queueDeletion: false)
            }
        } catch {
            logger.error("cannot drop the unsaved changes of inode \(write.ino): \(error); the next mount drops them")
        }
    }
}
