/// Empty files are metadata only: a file whose content is empty at its commit has no cluster
/// file (`file_id` NULL, size 0), as JuiceFS and mountpoint-s3 keep empty files. Its commit is
/// one statement on PostgreSQL for a new file, the common case (`touch`, `mdtest`, lock files).
extension MappingStore {
    /// Commits file `ino` as empty: no cluster file, size 0, `mtime`, and a ctime that does not
    /// go below `ctime`; the row is no longer provisional and no session owns it; an upload
    /// journaled for it is forgotten. A cluster file it pointed at is queued for deletion
    /// (`queueDeletion`) when no other name refers to it, and returned. Fails with ENOENT when
    /// the name was removed (or unlinked while open) meanwhile.
    public func commitEmpty(ino: UInt64, mtime: Int64, ctime: Int64, queueDeletion: Bool) throws(FSError) -> (entry: Entry, orphaned: String?) {
        if engine == .postgres, let entry = try commitNewEmpty(ino: ino, mtime: mtime, ctime: ctime) { return (entry, nil) }
        return try transaction { (db: any MetadataConnection) throws(FSError) -> (entry: Entry, orphaned: String?) in
            try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))])
            // Locked, as in commitUpload: of two mounts committing one file, the later one wins.
            guard var entry = try Self.lockedEntry(db, ino), entry.kind == .file, !entry.isDetached else {
                throw FSError(.notFound, "inode \(ino) was removed before its commit")
            }
            let old = entry.fileID
            entry.fileID = nil
            entry.size = 0
            entry.mtime = mtime
            entry.ctime = max(entry.ctime, ctime)
            entry.state = Entry.committed
            try db.run("UPDATE entries SET file_id = NULL, size = 0, mtime = ?, ctime = ?, state = 0, session = NULL WHERE ino = ?",
                       [.int(entry.mtime), .int(entry.ctime), .int(Int64(ino))])
            return (entry, try Self.orphan(db, old, queueDeletion: queueDeletion))
        }
    }

    /// PostgreSQL, one round trip: commits `ino` as empty when it has no cluster file yet (a
    /// new file, provisional or empty already). Nil when the row has a cluster file or is
    /// gone (``commitEmpty(ino:mtime:ctime:queueDeletion:)`` then takes the long way).
    private func commitNewEmpty(ino: UInt64, mtime: Int64, ctime: Int64) throws(FSError) -> Entry? {
        try with(forgetting: [ino]) { (db: any MetadataConnection) throws(FSError) -> Entry? in
            try Self.fetchEntry(db, """
                WITH forgotten AS (DELETE FROM pending WHERE ino = ?)
                UPDATE entries SET size = 0, mtime = ?, ctime = GREATEST(ctime, ?), state = 0, session = NULL
                WHERE ino = ? AND kind = ? AND parent <> 0 AND file_id IS NULL RETURNING \(Self.columns)
                """, [.int(Int64(ino)), .int(mtime), .int(ctime), .int(Int64(ino)), .int(EntryKind.file.rawValue)])
        }
    }
}
