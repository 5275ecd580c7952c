import FDFSProtocol

/// The journals: uploads in flight, metadata writes due, cluster deletions to do, streamed
/// appender files.
extension MappingStore {
    // MARK: Upload journal

    /// Journals an upload of `ino` (replacing one journaled before); returns its ID. One
    /// statement on PostgreSQL (the earlier row is deleted in a CTE).
    public func beginUpload(ino: UInt64, spool: String, size: Int64, oldFileID: String?, inPlace: Bool) throws(FSError) -> Int64 {
        try read { (db: any MetadataConnection) throws(FSError) -> Int64 in
            let values: [SQLValue] = [.int(Int64(ino)), .text(spool), .int(size), .optional(oldFileID), .int(inPlace ? 1 : 0), .int(POSIX.nowNanoseconds()), .text(session)]
            let insert = "INSERT INTO pending(ino, spool, size, old_file_id, in_place, started, session) VALUES(?,?,?,?,?,?,?) RETURNING id"
            let id: Int64?
            if db.engine == .postgres {
                id = try db.firstInt("WITH earlier AS (DELETE FROM pending WHERE ino = ?) " + insert, [.int(Int64(ino))] + values)
            } else {
                try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))])
                id = try db.firstInt(insert, values)
            }
            guard let id else { throw FSError(.io, "the upload journal gave no ID") }
            return id
        }
    }

    /// Records the ID the cluster gave, right after the upload answered.
    public func uploaded(pending id: Int64, fileID: String) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in
            try db.run("UPDATE pending SET new_file_id = ? WHERE id = ?", [.text(fileID), .int(id)])
        }
    }

    /// Uploads in the journal: every one, or those of `scope`'s sessions.
    public func pendingUploads(_ scope: JournalScope? = nil) throws(FSError) -> [PendingUpload] {
        try read { (db: any MetadataConnection) throws(FSError) -> [PendingUpload] in
            var list: [PendingUpload] = []
            try db.query("SELECT id, ino, spool, size, old_file_id, new_file_id, in_place FROM pending WHERE \(scope?.condition ?? "true") ORDER BY id",
                         scope?.values ?? []) { (row: SQLRow) throws(FSError) in
                list.append(PendingUpload(
                    id: row.int(0), ino: UInt64(row.int(1)), spool: row.text(2) ?? "", size: row.int(3),
                    oldFileID: row.isNull(4) ? nil : row.text(4), newFileID: row.isNull(5) ? nil : row.text(5), inPlace: row.int(6) != 0))
            }
            return list
        }
    }

    public func dropPending(_ id: Int64) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in try db.run("DELETE FROM pending WHERE id = ?", [.int(id)]) }
    }

    /// Forgets every upload journaled for `ino` (its spool is being dropped).
    public func dropPendingUploads(ino: UInt64) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))]) }
    }

    /// Commits an upload: the entry points at `newID` with `size` (and optionally a new
    /// mtime, and a ctime it does not go below), the generated row of the new ID exists under `generatedParent`, the journal
    /// row is gone, and the replaced ID is queued for deletion when nothing refers to it.
    /// Returns (entry, orphaned old ID). Fails with ENOENT when the entry was removed meanwhile.
    public func commitUpload(pending id: Int64, ino: UInt64, newID: String, size: Int64, mtime: Int64? = nil, ctime: Int64? = nil, generatedParent: UInt64?, generated: Entry?, queueDeletion: Bool) throws(FSError) -> (Entry, String?) {
        try transaction { (db: any MetadataConnection) throws(FSError) -> (Entry, String?) in
            try db.run("DELETE FROM pending WHERE id = ?", [.int(id)])
            // Locked: of two mounts committing the same file, the second waits, then replaces
            // (and queues for deletion) the first one's upload rather than the ID both started from.
            guard var entry = try Self.lockedEntry(db, ino), entry.kind == .file else {
                throw FSError(.notFound, "inode \(ino) was removed during its upload")
            }
            let old = entry.fileID
            entry.fileID = newID
            entry.size = size
            entry.state = Entry.committed
            if let mtime { entry.mtime = mtime }
            if let ctime { entry.ctime = max(entry.ctime, ctime) }
            // Committed: no session owns the row any more (a detached one stays its session's).
            try db.run("UPDATE entries SET file_id = ?, size = ?, mtime = ?, ctime = ?, state = 0, session = CASE WHEN parent = 0 THEN session ELSE NULL END WHERE ino = ?",
                       [.text(newID), .int(size), .int(entry.mtime), .int(entry.ctime), .int(Int64(ino))])
            try Self.markMetadataDue(db, newID, ino: ino, session: session)
            if generatedParent != nil, var generated {
                generated.fileID = newID
                _ = try Self.insert(db, generated, orExisting: true, lookFirst: false)
            }
            var orphaned: String?
            if let old, old != newID { orphaned = try Self.orphan(db, old, queueDeletion: queueDeletion) }
            return (entry, orphaned)
        }
    }

    // MARK: Metadata journal

    /// Files whose FastDFS metadata (path, mode, mtime) must be (re)written: marked in the same
    /// transaction as the commit or rename that changed it, so a crash cannot lose it.
    public struct MetadataDue: Sendable, Hashable {
        public var fileID: String
        public var ino: UInt64
        /// When it was marked; ``metadataWritten(_:)`` clears only this marking.
        public var marked: Int64
    }

    /// The marking belongs to `session` (the last mount that marked it writes it).
    static func markMetadataDue(_ db: any MetadataConnection, _ fileID: String, ino: UInt64, session: String) throws(FSError) {
        try db.run("INSERT INTO metadata_due(file_id, ino, marked, session) VALUES(?,?,?,?) ON CONFLICT(file_id) DO UPDATE SET ino = excluded.ino, marked = excluded.marked, session = excluded.session",
                   [.text(fileID), .int(Int64(ino)), .int(POSIX.nowNanoseconds()), .text(session)])
    }

    public func markMetadataDue(_ fileID: String, ino: UInt64) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in try Self.markMetadataDue(db, fileID, ino: ino, session: session) }
    }

    /// This session's due metadata writes, oldest first.
    public func metadataDue(limit: Int = 1000) throws(FSError) -> [MetadataDue] {
        try read { (db: any MetadataConnection) throws(FSError) -> [MetadataDue] in
            var list: [MetadataDue] = []
            try db.query("SELECT file_id, ino, marked FROM metadata_due WHERE session = ? ORDER BY marked LIMIT ?", [.text(session), .int(Int64(limit))]) { (row: SQLRow) throws(FSError) in
                list.append(MetadataDue(fileID: row.text(0) ?? "", ino: UInt64(row.int(1)), marked: row.int(2)))
            }
            return list
        }
    }

    /// Clears markings that were written (a file marked again meanwhile stays due).
    public func metadataWritten(_ done: [MetadataDue]) throws(FSError) {
        guard !done.isEmpty else { return }
        try transaction(entries: false) { (db: any MetadataConnection) throws(FSError) in
            for item in done {
                try db.run("DELETE FROM metadata_due WHERE file_id = ? AND marked = ?", [.text(item.fileID), .int(item.marked)])
            }
        }
    }

    // MARK: Deletions journal

    public func deletions() throws(FSError) -> [String] {
        try read { (db: any MetadataConnection) throws(FSError) -> [String] in
            var list: [String] = []
            try db.query("SELECT file_id FROM deletions ORDER BY since") { (row: SQLRow) throws(FSError) in list.append(row.text(0) ?? "") }
            return list
        }
    }

    /// Is `fileID` still waiting to be deleted from the cluster?
    public func deletionQueued(_ fileID: String) throws(FSError) -> Bool {
        try read { (db: any MetadataConnection) throws(FSError) -> Bool in
            (try db.firstInt("SELECT COUNT(*) FROM deletions WHERE file_id = ?", [.text(fileID)]) ?? 0) > 0
        }
    }

    public func deleted(_ fileID: String) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in try db.run("DELETE FROM deletions WHERE file_id = ?", [.text(fileID)]) }
    }

    // MARK: Streamed uploads

    /// Records an appender file that a streamed upload created (before any name refers to it),
    /// so that it is deleted if the mount dies before the commit.
    public func streamStarted(_ fileID: String, ino: UInt64) throws(FSError) {
        try read { (db: any MetadataConnection) throws(FSError) in
            try db.run("INSERT INTO streams(file_id, ino, since, session) VALUES(?,?,?,?) ON CONFLICT(file_id) DO UPDATE SET ino = excluded.ino, since = excluded.since, session = excluded.session",
                       [.text(fileID), .int(Int64(ino)), .int(POSIX.nowNanoseconds()), .text(session)])
        }
    }

    /// The stream is over: its appender file became the committed file (or was renamed by
    /// REGENERATE), or, when `abandoned`, it is queued for deletion from the cluster.
    public func streamEnded(_ fileID: String, abandoned: Bool) throws(FSError) {
        try transaction(entries: false) { (db: any MetadataConnection) throws(FSError) in
            try db.run("DELETE FROM streams WHERE file_id = ?", [.text(fileID)])
            if abandoned {
                try db.run("INSERT INTO deletions(file_id, since) VALUES(?, ?) ON CONFLICT(file_id) DO UPDATE SET since = excluded.since", [.text(fileID), .int(POSIX.nowNanoseconds())])
            }
        }
    }

    /// Appender files of streams in progress (journaled and not yet ended).
    public func streamCount() throws(FSError) -> Int {
        try read { (db: any MetadataConnection) throws(FSError) -> Int in try Self.streamCount(db) }
    }

    private static func streamCount(_ db: any MetadataConnection) throws(FSError) -> Int {
        Int(try db.firstInt("SELECT COUNT(*) FROM streams", []) ?? 0)
    }

    /// After a crash: every stream left (of `scope`'s sessions) is abandoned (queued for
    /// deletion). Returns how many.
    public func abandonStreams(_ scope: JournalScope? = nil) throws(FSError) -> Int {
        try transaction(entries: false) { (db: any MetadataConnection) throws(FSError) -> Int in
            let condition = scope?.condition ?? "true", values = scope?.values ?? []
            let count = Int(try db.firstInt("SELECT COUNT(*) FROM streams WHERE \(condition)", values) ?? 0)
            try db.run("INSERT INTO deletions(file_id, since) SELECT file_id, since FROM streams WHERE \(condition) ON CONFLICT(file_id) DO UPDATE SET since = excluded.since", values)
            try db.run("DELETE FROM streams WHERE \(condition)", values)
            return count
        }
    }

}
