import FDFSProtocol

/// Names and attributes: inserting, updating, removing and renaming rows.
extension MappingStore {
    // MARK: Writes

    /// Inserts a row (or returns the existing one with the same parent and name when
    /// `orExisting`).
    @discardableResult
    public func insert(_ entry: Entry, orExisting: Bool = false) throws(FSError) -> Entry {
        try with { (db: any MetadataConnection) throws(FSError) -> Entry in try Self.insert(db, entry, orExisting: orExisting) }
    }

    /// Inserts a row; a provisional one is tagged with `session` (its owner, schema version 4).
    /// The name is claimed by the INSERT itself (`ON CONFLICT DO NOTHING` on the unique
    /// parent and name): of two mounts creating one name at once, one inserts and the other
    /// finds the name taken (EEXIST, or the winner's row when `orExisting`), never an error.
    /// With `orExisting` (synthetic and generated rows, usually there already) the row is
    /// looked for first; otherwise (a new name, usually free) the insert is tried first and a
    /// taken name found by its conflict: one statement, one round trip on PostgreSQL.
    /// `lookFirst: false` tries the insert first even with `orExisting` (a row that is usually
    /// new, as the generated row of a file just uploaded).
    static func insert(_ db: any MetadataConnection, _ entry: Entry, orExisting: Bool, session: String? = nil, lookFirst: Bool? = nil) throws(FSError) -> Entry {
        if lookFirst ?? orExisting, let existing = try nameRow(db, entry.parent, entry.name) { return existing }
        let ino = try db.firstInt(
            "INSERT INTO entries(parent, name, kind, mode, uid, gid, atime, mtime, ctime, size, file_id, target, state, rdev, link_ino, session) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(parent, name) DO NOTHING RETURNING ino",
            [.int(Int64(entry.parent)), .text(entry.name), .int(entry.kind.rawValue), .int(entry.mode), .int(entry.uid), .int(entry.gid),
             .int(entry.atime), .int(entry.mtime), .int(entry.ctime), .int(entry.size), .optional(entry.fileID), .optional(entry.target), .int(entry.state),
             .int(Int64(bitPattern: entry.rdev)), .int(Int64(entry.linkIno)), .optional(entry.state == Entry.provisional ? session : nil)])
        guard let ino else {
            // Taken, perhaps by another mount's transaction that committed meanwhile.
            if orExisting, let existing = try nameRow(db, entry.parent, entry.name) { return existing }
            throw FSError(.exists, entry.name)
        }
        var copy = entry
        copy.ino = UInt64(ino)
        return copy
    }

    /// Inserts many synthetic rows in one transaction (listing a synthetic directory).
    public func insertAll(_ entries: [Entry]) throws(FSError) -> [Entry] {
        try transaction { (db: any MetadataConnection) throws(FSError) -> [Entry] in
            var result: [Entry] = []
            for entry in entries { result.append(try Self.insert(db, entry, orExisting: true)) }
            return result
        }
    }

    /// Writes the attributes of an existing row: mode, owner, times, symlink target, and the
    /// size only while the row still points at `entry.fileID`. The file ID and state are the
    /// commit's (``commitUpload(pending:ino:newID:size:mtime:ctime:generatedParent:generated:queueDeletion:)``):
    /// a `chmod` on one mount must not put back the file ID that another mount's commit replaced.
    public func update(_ entry: Entry) throws(FSError) {
        try with { (db: any MetadataConnection) throws(FSError) in
            try db.run(
                "UPDATE entries SET mode=?, uid=?, gid=?, atime=?, mtime=?, ctime=?, target=?, size = CASE WHEN file_id IS NOT DISTINCT FROM ? THEN ? ELSE size END WHERE ino=?",
                [.int(entry.mode), .int(entry.uid), .int(entry.gid), .int(entry.atime), .int(entry.mtime), .int(entry.ctime),
                 .optional(entry.target), .optional(entry.fileID), .int(entry.size), .int(Int64(entry.ino))])
        }
    }

    /// Removes a user entry (its directory's mtime and ctime change). Returns the file ID that
    /// no name refers to any more (to delete from the cluster), if any. With `queueDeletion`,
    /// that ID is recorded in the deletions journal in the same transaction.
    public func remove(_ ino: UInt64, queueDeletion: Bool) throws(FSError) -> String? {
        if engine == .postgres, queueDeletion { return try removeInOneStatement(ino) }
        return try transaction { (db: any MetadataConnection) throws(FSError) -> String? in
            // Locked: a commit on another mount that repoints it waits, or has happened and is seen.
            guard let entry = try Self.lockedEntry(db, ino) else { return nil }
            try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(ino))])
            try db.run("DELETE FROM entries WHERE kind = ? AND link_ino = ?", [.int(EntryKind.hardLink.rawValue), .int(Int64(ino))])
            try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))])
            try Self.touch(db, entry.parent, at: POSIX.nowNanoseconds())
            return try Self.orphan(db, entry.kind == .file ? entry.fileID : nil, queueDeletion: queueDeletion)
        }
    }

    /// When no user name refers to `fileID` any more: forgets its generated row and (if asked)
    /// queues its deletion. Returns the ID when it became unreferenced.
    static func orphan(_ db: any MetadataConnection, _ fileID: String?, queueDeletion: Bool) throws(FSError) -> String? {
        guard let fileID else { return nil }
        let refs = try db.firstInt("SELECT COUNT(*) FROM entries WHERE file_id = ? AND kind = 2", [.text(fileID)]) ?? 0
        guard refs == 0 else { return nil }
        guard queueDeletion else { return nil }
        try db.run("DELETE FROM entries WHERE file_id = ? AND kind = 1", [.text(fileID)])
        try db.run("INSERT INTO deletions(file_id, since) VALUES(?, ?) ON CONFLICT(file_id) DO UPDATE SET since = excluded.since", [.text(fileID), .int(POSIX.nowNanoseconds())])
        return fileID
    }

    /// Renames `ino` to (`newParent`, `newName`), replacing `replaced` (if any) in the same
    /// transaction; both directories' mtime and ctime change. Returns a file ID no longer
    /// referenced (queued for deletion when asked). With `detachReplaced` the replaced file
    /// keeps its row, detached, for descriptors still open on it (see ``detach(_:_:)``).
    /// `ino` and `replaced` are name rows (``nameRow(_:_:)``): a hard link moves as a name,
    /// and a replaced name that is not its inode's last goes alone (``dropName(_:)``).
    ///
    /// Both directories and both names are locked first and checked against what the caller
    /// decided on: when another mount renamed or removed the source meanwhile (it is no longer
    /// `source`, when given) the rename fails with ENOENT; when the target name now stands for
    /// another row than `replaced`, it fails with ``FSError/Code/conflict`` and changes nothing,
    /// so the caller checks again and retries.
    public func rename(_ ino: UInt64, to newParent: UInt64, _ newName: String, replacing replaced: UInt64?, queueDeletion: Bool,
                       detachReplaced: Bool = false, from source: (parent: UInt64, name: String)? = nil) throws(FSError) -> String? {
        try transaction { (db: any MetadataConnection) throws(FSError) -> String? in
            var orphaned: String?
            let now = POSIX.nowNanoseconds()
            // Directories first, in inode order (as create and rmdir lock them), then the rows.
            var oldParent = source?.parent
            if oldParent == nil { oldParent = try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))])?.parent }
            try Self.touchLocked(db, [oldParent, newParent].compactMap { $0 }, at: now)
            guard let moved = try Self.lockedEntry(db, ino) else { throw FSError(.notFound, "inode \(ino) was removed") }
            if let source, moved.parent != source.parent || moved.name != source.name {
                throw FSError(.notFound, "\(source.name) was renamed or removed meanwhile")
            }
            let current = try Self.lockedNameRow(db, newParent, newName)
            guard current?.ino == replaced else { throw FSError(.conflict, "\(newName) changed meanwhile") }
            if let replaced, let old = try Self.lockedEntry(db, replaced) {
                if try Self.dropName(db, old, at: now, session: session) {
                    // The replaced inode keeps its other names.
                } else if detachReplaced {
                    try Self.detach(db, old, .replaced, session: session)
                } else {
                    try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(replaced))])
                    try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(replaced))])
                    if old.kind == .file { orphaned = try Self.orphan(db, old.fileID, queueDeletion: queueDeletion) }
                }
            }
            if moved.kind == .hardLink { try db.run("UPDATE entries SET ctime = ? WHERE ino = ?", [.int(now), .int(Int64(moved.linkIno))]) }
            try db.run("UPDATE entries SET parent = ?, name = ?, ctime = ? WHERE ino = ?",
                       [.int(Int64(newParent)), .text(newName), .int(now), .int(Int64(ino))])
            // Every file at or below the moved entry carries a new path (nothing to do for an
            // entry that is neither a directory nor a file with a cluster file).
            guard moved.kind == .directory || moved.kind == .file && moved.fileID != nil else { return orphaned }
            try db.run("""
                WITH RECURSIVE moved(ino) AS (SELECT ? UNION ALL SELECT e.ino FROM entries e JOIN moved ON e.parent = moved.ino)
                INSERT INTO metadata_due(file_id, ino, marked, session)
                SELECT e.file_id, MIN(e.ino), ?, ? FROM entries e JOIN moved ON e.ino = moved.ino WHERE e.kind = ? AND e.file_id IS NOT NULL
                GROUP BY e.file_id ON CONFLICT(file_id) DO UPDATE SET ino = excluded.ino, marked = excluded.marked, session = excluded.session
                """, [.int(Int64(ino)), .int(POSIX.nowNanoseconds()), .text(session), .int(EntryKind.file.rawValue)])
            return orphaned
        }
    }

}

extension MappingStore {
    /// PostgreSQL: ``remove(_:queueDeletion:)`` with `queueDeletion` in one round trip, as one
    /// statement (its own transaction). Row locks are taken in the same order as the
    /// transaction's: the row (its DELETE), then its directory (the touch, which needs the
    /// deleted row's parent). Every sub-statement sees the rows as they were before it, so the
    /// references to the file ID left are counted without the deleted row.
    func removeInOneStatement(_ ino: UInt64) throws(FSError) -> String? {
        try with { (db: any MetadataConnection) throws(FSError) -> String? in
            var orphaned: String?
            try db.query("""
                WITH gone AS (DELETE FROM entries WHERE ino = ? RETURNING parent, kind, file_id),
                links AS (DELETE FROM entries WHERE kind = ? AND link_ino = ?),
                journal AS (DELETE FROM pending WHERE ino = ?),
                dir AS (UPDATE entries SET mtime = ?, ctime = ? WHERE ino = (SELECT parent FROM gone)),
                orphan AS (SELECT g.file_id FROM gone g WHERE g.kind = ? AND g.file_id IS NOT NULL
                           AND NOT EXISTS (SELECT 1 FROM entries o WHERE o.file_id = g.file_id AND o.kind = ? AND o.ino <> ?)),
                generated AS (DELETE FROM entries WHERE kind = ? AND file_id IN (SELECT file_id FROM orphan)),
                queued AS (INSERT INTO deletions(file_id, since) SELECT file_id, ? FROM orphan
                           ON CONFLICT(file_id) DO UPDATE SET since = excluded.since RETURNING file_id)
                SELECT file_id FROM queued
                """, {
                    let now = POSIX.nowNanoseconds(), row = Int64(ino)
                    return [.int(row), .int(EntryKind.hardLink.rawValue), .int(row), .int(row), .int(now), .int(now),
                            .int(EntryKind.file.rawValue), .int(EntryKind.file.rawValue), .int(row), .int(EntryKind.generated.rawValue), .int(now)]
                }()) { (row: SQLRow) throws(FSError) in orphaned = row.text(0) }
            return orphaned
        }
    }
}
