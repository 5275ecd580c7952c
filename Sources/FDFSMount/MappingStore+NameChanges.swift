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
    /// directory was removed (see ``removeDirectory(_:in:named:)``).
    public func create(_ entry: Entry) throws(FSError) -> Entry {
        try transaction { (db: any MetadataConnection) throws(FSError) -> Entry in
            try Self.touchLocked(db, [entry.parent], at: entry.ctime)
            return try Self.insert(db, entry, orExisting: false, session: session)
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
