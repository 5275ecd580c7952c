/// Why a row lost its name while descriptors were open on it.
public enum DetachReason: String, Sendable {
    /// `unlink`: its cluster file is deleted after the last close.
    case unlinked
    /// Replaced by a `rename`: its cluster file is deleted after the last close unless
    /// `keep_replaced`.
    case replaced
}

extension Entry {
    /// A file whose name went away while descriptors were open on it: its row (inode,
    /// attributes, file ID) stays, under no directory, until the last descriptor closes.
    public var isDetached: Bool { parent == 0 && ino != MappingStore.rootIno }

    /// Why a detached row lost its name (nil for rows that have one).
    public var detachReason: DetachReason? {
        guard isDetached, let dash = name.firstIndex(of: "-") else { return nil }
        return DetachReason(rawValue: String(name[..<dash]))
    }
}

extension MappingStore {
    /// Inserts a user entry (file, directory, symlink) and sets its directory's mtime and
    /// ctime to its creation time, in one transaction. The directory is locked first: EEXIST
    /// when the name is taken (also by another mount at the same moment), ENOENT when the
    /// directory was removed (see ``removeDirectory(_:in:named:)``). On PostgreSQL both are one
    /// statement (``createInOneStatement(_:)``).
    public func create(_ entry: Entry) throws(FSError) -> Entry {
        if engine == .postgres { return try createInOneStatement(entry) }
        return try transaction { (db: any MetadataConnection) throws(FSError) -> Entry in
            try Self.touchLocked(db, [entry.parent], at: entry.ctime)
            return try Self.insert(db, entry, orExisting: false, session: session)
        }
    }

    /// PostgreSQL: ``create(_:)`` in one round trip. The directory's row is touched (and so
    /// locked) by a data-modifying CTE, unless the name is taken already (a failed create leaves
    /// the directory's times alone), and the name inserted only when that found the directory;
    /// the statement is its own transaction. When nothing was inserted, a second
    /// look tells a removed directory (ENOENT) from a taken name (EEXIST).
    private func createInOneStatement(_ entry: Entry) throws(FSError) -> Entry {
        try with(forgetting: [entry.parent], names: [(entry.parent, entry.name)]) { (db: any MetadataConnection) throws(FSError) -> Entry in
            let ino = try db.firstInt("""
                WITH dir AS (UPDATE entries SET mtime = ?, ctime = ? WHERE ino = ?
                             AND NOT EXISTS (SELECT 1 FROM entries WHERE parent = ? AND name = ?) RETURNING ino)
                INSERT INTO entries(parent, name, kind, mode, uid, gid, atime, mtime, ctime, size, file_id, target, state, rdev, link_ino, session)
                SELECT dir.ino, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?, CAST(? AS TEXT) FROM dir
                ON CONFLICT(parent, name) DO NOTHING RETURNING ino
                """,
                [.int(entry.ctime), .int(entry.ctime), .int(Int64(entry.parent)), .int(Int64(entry.parent)), .text(entry.name),
                 .text(entry.name), .int(entry.kind.rawValue), .int(entry.mode), .int(entry.uid), .int(entry.gid),
                 .int(entry.atime), .int(entry.mtime), .int(entry.ctime), .int(entry.size), .optional(entry.fileID), .optional(entry.target),
                 .int(entry.state), .int(Int64(bitPattern: entry.rdev)), .int(Int64(entry.linkIno)),
                 .optional(entry.state == Entry.provisional ? session : nil)])
            if let ino {
                var created = entry
                created.ino = UInt64(ino)
                return created
            }
            guard try db.firstInt("SELECT 1 FROM entries WHERE ino = ?", [.int(Int64(entry.parent))]) != nil else {
                throw FSError(.notFound, "directory \(entry.parent) was removed")
            }
            throw FSError(.exists, entry.name)
        }
    }

    /// A name was added to or removed from directory `ino`: its mtime and ctime become `now`.
    static func touch(_ db: any MetadataConnection, _ ino: UInt64, at now: Int64) throws(FSError) {
        try db.run("UPDATE entries SET mtime = ?, ctime = ? WHERE ino = ?", [.int(now), .int(now), .int(Int64(ino))])
    }

    /// Takes the name of file `ino` away but keeps its row for the descriptors still open on
    /// it (``Entry/isDetached``); its directory's times change as for a removal. The row goes
    /// with ``remove(_:queueDeletion:)`` once the last descriptor closes.
    public func detach(_ ino: UInt64, _ reason: DetachReason) throws(FSError) {
        try transaction { (db: any MetadataConnection) throws(FSError) in
            guard let entry = try Self.lockedEntry(db, ino) else { return }
            try Self.detach(db, entry, reason, session: session)
        }
    }

    /// The detached row belongs to `session` (its descriptors are that mount's).
    static func detach(_ db: any MetadataConnection, _ entry: Entry, _ reason: DetachReason, session: String) throws(FSError) {
        let now = POSIX.nowNanoseconds()
        try db.run("UPDATE entries SET parent = 0, name = ?, ctime = ?, session = ? WHERE ino = ?",
                   [.text("\(reason.rawValue)-\(entry.ino)"), .int(now), .text(session), .int(Int64(entry.ino))])
        try touch(db, entry.parent, at: now)
    }

    /// Detached rows (of `scope`'s sessions: after a restart, or once their session died, no
    /// descriptor of theirs is open on any of them).
    public func detachedEntries(_ scope: JournalScope? = nil) throws(FSError) -> [Entry] {
        try read { (db: any MetadataConnection) throws(FSError) -> [Entry] in
            try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE parent = 0 AND ino != ? AND \(scope?.condition ?? "true")",
                                  [.int(Int64(Self.rootIno))] + (scope?.values ?? []))
        }
    }
}
