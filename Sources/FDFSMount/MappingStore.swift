import FDFSProtocol
import Synchronization

/// What a row of the namespace is.
public enum EntryKind: Int64, Sendable {
    case root = 0
    /// A cluster file under its generated name (`groupN/Mxx/HH/HH/name`).
    case generated = 1
    /// A regular file that a user named.
    case file = 2
    case directory = 3
    case symlink = 4
    case group = 5
    case storePath = 6
    case subdirHigh = 7
    case subdirLow = 8
    /// Special files: inodes of the mapping store with a mode (and a device number) and no
    /// cluster file; the kernel does their I/O.
    case fifo = 9
    case socket = 10
    case characterDevice = 11
    case blockDevice = 12
    /// A further name of an inode (a hard link): the row is a name only, `linkIno` is the
    /// inode it names. Never returned as an inode.
    case hardLink = 13

    /// Directories the mount synthesises from the cluster's layout.
    public var isSynthetic: Bool { self == .root || self == .group || self == .storePath || self == .subdirHigh || self == .subdirLow }
    public var isDirectory: Bool { isSynthetic || self == .directory }
    /// FIFOs, sockets and device nodes.
    public var isSpecial: Bool { (EntryKind.fifo.rawValue...EntryKind.blockDevice.rawValue).contains(rawValue) }
    /// Entries users own (and may rename, remove, change).
    public var isUser: Bool { self == .file || self == .directory || self == .symlink || isSpecial }
}

/// One row of the namespace.
public struct Entry: Sendable, Hashable {
    public var ino: UInt64
    public var parent: UInt64
    public var name: String
    public var kind: EntryKind
    /// Permission bits (no file type bits).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Times in nanoseconds since the epoch.
    public var atime: Int64
    public var mtime: Int64
    public var ctime: Int64
    public var size: Int64
    /// The cluster file of a file or generated entry; for synthetic directories their path
    /// (`group1/M00/0A`).
    public var fileID: String?
    /// Symlink target.
    public var target: String?
    /// 0 = committed, 1 = provisional (created, not yet uploaded).
    public var state: Int64
    /// The device number of a character or block device.
    public var rdev: UInt64 = 0
    /// For a ``EntryKind/hardLink`` row: the inode it names.
    public var linkIno: UInt64 = 0

    public static let committed: Int64 = 0
    public static let provisional: Int64 = 1
}

/// A pending upload: recorded before the upload starts, finished by the commit.
public struct PendingUpload: Sendable, Hashable {
    public var id: Int64
    public var ino: UInt64
    public var spool: String
    public var size: Int64
    public var oldFileID: String?
    public var newFileID: String?
    /// 1 when the upload continues an appender file in place (no new ID).
    public var inPlace: Bool
}

/// The mapping store: SQLite in WAL mode, holding the namespace (entries), the journal of
/// pending uploads, appender files being streamed, cluster deletions still to do, and the
/// last known group layout.
public final class MappingStore: Sendable {
    public static let rootIno: UInt64 = 1
    private let db: Mutex<SQLiteDatabase>
    public let path: String

    static let columns = "ino, parent, name, kind, mode, uid, gid, atime, mtime, ctime, size, file_id, target, state, rdev, link_ino"

    public init(path: String, readOnly: Bool = false) throws(FSError) {
        self.path = path
        let database = try SQLiteDatabase(path: path, readOnly: readOnly)
        if !readOnly {
            try database.execute("PRAGMA journal_mode=WAL")
            try database.execute("PRAGMA synchronous=NORMAL")
            try database.execute("""
                CREATE TABLE IF NOT EXISTS entries(
                  ino INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL,
                  mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
                  atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
                  size INTEGER NOT NULL DEFAULT 0, file_id TEXT, target TEXT, state INTEGER NOT NULL DEFAULT 0,
                  UNIQUE(parent, name));
                CREATE INDEX IF NOT EXISTS entries_file_id ON entries(file_id);
                CREATE TABLE IF NOT EXISTS pending(
                  id INTEGER PRIMARY KEY, ino INTEGER NOT NULL, spool TEXT NOT NULL, size INTEGER NOT NULL,
                  old_file_id TEXT, new_file_id TEXT, in_place INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS deletions(file_id TEXT PRIMARY KEY, since INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS streams(file_id TEXT PRIMARY KEY, ino INTEGER NOT NULL, since INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS metadata_due(file_id TEXT PRIMARY KEY, ino INTEGER NOT NULL, marked INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS groups(name TEXT PRIMARY KEY, store_paths INTEGER NOT NULL, subdirs INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT);
                """)
            try Self.addColumnsForLinksAndSpecialFiles(database)
            let now = POSIX.nowNanoseconds()
            try database.run(
                "INSERT OR IGNORE INTO entries(ino, parent, name, kind, mode, uid, gid, atime, mtime, ctime) VALUES(1, 0, '', 0, 493, 0, 0, ?, ?, ?)",
                [.int(now), .int(now), .int(now)])
        }
        db = Mutex(database)
    }

    /// Runs `body` with the database, under the store's lock.
    func with<T: Sendable>(_ body: (SQLiteDatabase) throws(FSError) -> T) throws(FSError) -> T {
        try db.withLock { (database: inout SQLiteDatabase) throws(FSError) -> T in try body(database) }
    }

    /// Runs `body` in one transaction.
    func transaction<T: Sendable>(_ body: (SQLiteDatabase) throws(FSError) -> T) throws(FSError) -> T {
        try with { (database: SQLiteDatabase) throws(FSError) -> T in
            try database.transaction { () throws(FSError) -> T in try body(database) }
        }
    }

    static func entry(_ row: SQLRow) -> Entry {
        Entry(
            ino: UInt64(row.int(0)), parent: UInt64(row.int(1)), name: row.text(2) ?? "",
            kind: EntryKind(rawValue: row.int(3)) ?? .file, mode: UInt32(truncatingIfNeeded: row.int(4)),
            uid: UInt32(truncatingIfNeeded: row.int(5)), gid: UInt32(truncatingIfNeeded: row.int(6)),
            atime: row.int(7), mtime: row.int(8), ctime: row.int(9), size: row.int(10),
            fileID: row.isNull(11) ? nil : row.text(11), target: row.isNull(12) ? nil : row.text(12), state: row.int(13),
            rdev: UInt64(bitPattern: row.int(14)), linkIno: UInt64(row.int(15)))
    }

    static func fetchEntry(_ db: SQLiteDatabase, _ sql: String, _ values: [SQLValue]) throws(FSError) -> Entry? {
        var found: Entry?
        try db.query(sql, values) { (row: SQLRow) throws(FSError) in found = entry(row) }
        return found
    }

    static func fetchEntries(_ db: SQLiteDatabase, _ sql: String, _ values: [SQLValue]) throws(FSError) -> [Entry] {
        var found: [Entry] = []
        try db.query(sql, values) { (row: SQLRow) throws(FSError) in found.append(entry(row)) }
        return found
    }

    // MARK: Reads

    public func entry(_ ino: UInt64) throws(FSError) -> Entry? {
        try with { (db: SQLiteDatabase) throws(FSError) -> Entry? in
            try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))])
        }
    }

    /// The inode named `name` in `parent` (a hard link resolved to its inode, carrying the
    /// link's parent and name).
    public func child(_ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try with { (db: SQLiteDatabase) throws(FSError) -> Entry? in
            guard let row = try Self.nameRow(db, parent, name) else { return nil }
            return try Self.resolved(db, row)
        }
    }

    /// The row of the name `name` in `parent` as stored (a ``EntryKind/hardLink`` row is not
    /// resolved).
    public func nameRow(_ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try with { (db: SQLiteDatabase) throws(FSError) -> Entry? in try Self.nameRow(db, parent, name) }
    }

    static func nameRow(_ db: SQLiteDatabase, _ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try fetchEntry(db, "SELECT \(columns) FROM entries WHERE parent = ? AND name = ?", [.int(Int64(parent)), .text(name)])
    }

    /// The inodes named in `parent`, hard links resolved (each with its own name).
    public func children(_ parent: UInt64) throws(FSError) -> [Entry] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [Entry] in
            var list: [Entry] = []
            for row in try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE parent = ? ORDER BY name", [.int(Int64(parent))]) {
                if let inode = try Self.resolved(db, row) { list.append(inode) }
            }
            return list
        }
    }

    public func hasChildren(_ parent: UInt64) throws(FSError) -> Bool {
        try with { (db: SQLiteDatabase) throws(FSError) -> Bool in
            try db.firstInt("SELECT 1 FROM entries WHERE parent = ? AND kind IN (2, 3, 4, 9, 10, 11, 12, 13) LIMIT 1", [.int(Int64(parent))]) != nil
        }
    }

    /// Names (user files) that point at `fileID`.
    public func references(_ fileID: String) throws(FSError) -> Int {
        try with { (db: SQLiteDatabase) throws(FSError) -> Int in
            Int(try db.firstInt("SELECT COUNT(*) FROM entries WHERE file_id = ? AND kind = 2", [.text(fileID)]) ?? 0)
        }
    }

    /// The chain of entries from the root's child down to `ino` (empty for the root).
    public func ancestry(_ ino: UInt64) throws(FSError) -> [Entry] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [Entry] in try Self.ancestry(db, ino) }
    }

    static func ancestry(_ db: SQLiteDatabase, _ ino: UInt64) throws(FSError) -> [Entry] {
        var chain: [Entry] = []
        var current = ino
        while current != rootIno {
            guard let entry = try fetchEntry(db, "SELECT \(columns) FROM entries WHERE ino = ?", [.int(Int64(current))]) else {
                throw FSError(.notFound, "inode \(current) has no row")
            }
            chain.append(entry)
            current = entry.parent
            if chain.count > 4096 { throw FSError(.io, "namespace loop at inode \(ino)") }
        }
        return chain.reversed()
    }

    /// The path of `ino` relative to the mount root (`group1/photos/a.jpg`).
    public func path(_ ino: UInt64) throws(FSError) -> String {
        try ancestry(ino).map(\.name).joined(separator: "/")
    }

    // MARK: Writes

    /// Inserts a row (or returns the existing one with the same parent and name when
    /// `orExisting`).
    @discardableResult
    public func insert(_ entry: Entry, orExisting: Bool = false) throws(FSError) -> Entry {
        try with { (db: SQLiteDatabase) throws(FSError) -> Entry in try Self.insert(db, entry, orExisting: orExisting) }
    }

    static func insert(_ db: SQLiteDatabase, _ entry: Entry, orExisting: Bool) throws(FSError) -> Entry {
        if let existing = try fetchEntry(db, "SELECT \(columns) FROM entries WHERE parent = ? AND name = ?", [.int(Int64(entry.parent)), .text(entry.name)]) {
            if orExisting { return existing }
            throw FSError(.exists, entry.name)
        }
        try db.run(
            "INSERT INTO entries(parent, name, kind, mode, uid, gid, atime, mtime, ctime, size, file_id, target, state, rdev, link_ino) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [.int(Int64(entry.parent)), .text(entry.name), .int(entry.kind.rawValue), .int(entry.mode), .int(entry.uid), .int(entry.gid),
             .int(entry.atime), .int(entry.mtime), .int(entry.ctime), .int(entry.size), .optional(entry.fileID), .optional(entry.target), .int(entry.state),
             .int(Int64(bitPattern: entry.rdev)), .int(Int64(entry.linkIno))])
        var copy = entry
        copy.ino = UInt64(db.lastInsertRowID)
        return copy
    }

    /// Inserts many synthetic rows in one transaction (listing a synthetic directory).
    public func insertAll(_ entries: [Entry]) throws(FSError) -> [Entry] {
        try transaction { (db: SQLiteDatabase) throws(FSError) -> [Entry] in
            var result: [Entry] = []
            for entry in entries { result.append(try Self.insert(db, entry, orExisting: true)) }
            return result
        }
    }

    /// Writes every attribute of an existing row.
    public func update(_ entry: Entry) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in
            try db.run(
                "UPDATE entries SET mode=?, uid=?, gid=?, atime=?, mtime=?, ctime=?, size=?, file_id=?, target=?, state=? WHERE ino=?",
                [.int(entry.mode), .int(entry.uid), .int(entry.gid), .int(entry.atime), .int(entry.mtime), .int(entry.ctime),
                 .int(entry.size), .optional(entry.fileID), .optional(entry.target), .int(entry.state), .int(Int64(entry.ino))])
        }
    }

    /// Removes a user entry (its directory's mtime and ctime change). Returns the file ID that
    /// no name refers to any more (to delete from the cluster), if any. With `queueDeletion`,
    /// that ID is recorded in the deletions journal in the same transaction.
    public func remove(_ ino: UInt64, queueDeletion: Bool) throws(FSError) -> String? {
        try transaction { (db: SQLiteDatabase) throws(FSError) -> String? in
            guard let entry = try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))]) else { return nil }
            try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(ino))])
            try db.run("DELETE FROM entries WHERE kind = ? AND link_ino = ?", [.int(EntryKind.hardLink.rawValue), .int(Int64(ino))])
            try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))])
            try Self.touch(db, entry.parent, at: POSIX.nowNanoseconds())
            return try Self.orphan(db, entry.kind == .file ? entry.fileID : nil, queueDeletion: queueDeletion)
        }
    }

    /// When no user name refers to `fileID` any more: forgets its generated row and (if asked)
    /// queues its deletion. Returns the ID when it became unreferenced.
    static func orphan(_ db: SQLiteDatabase, _ fileID: String?, queueDeletion: Bool) throws(FSError) -> String? {
        guard let fileID else { return nil }
        let refs = try db.firstInt("SELECT COUNT(*) FROM entries WHERE file_id = ? AND kind = 2", [.text(fileID)]) ?? 0
        guard refs == 0 else { return nil }
        guard queueDeletion else { return nil }
        try db.run("DELETE FROM entries WHERE file_id = ? AND kind = 1", [.text(fileID)])
        try db.run("INSERT OR REPLACE INTO deletions(file_id, since) VALUES(?, ?)", [.text(fileID), .int(POSIX.nowNanoseconds())])
        return fileID
    }

    /// Renames `ino` to (`newParent`, `newName`), replacing `replaced` (if any) in the same
    /// transaction; both directories' mtime and ctime change. Returns a file ID no longer
    /// referenced (queued for deletion when asked). With `detachReplaced` the replaced file
    /// keeps its row, detached, for descriptors still open on it (see ``detach(_:_:)``).
    /// `ino` and `replaced` are name rows (``nameRow(_:_:)``): a hard link moves as a name,
    /// and a replaced name that is not its inode's last goes alone (``dropName(_:)``).
    public func rename(_ ino: UInt64, to newParent: UInt64, _ newName: String, replacing replaced: UInt64?, queueDeletion: Bool,
                       detachReplaced: Bool = false) throws(FSError) -> String? {
        try transaction { (db: SQLiteDatabase) throws(FSError) -> String? in
            var orphaned: String?
            let now = POSIX.nowNanoseconds()
            if let replaced, let old = try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(replaced))]) {
                if try Self.dropName(db, old, at: now) {
                    // The replaced inode keeps its other names.
                } else if detachReplaced {
                    try Self.detach(db, old, .replaced)
                } else {
                    try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(replaced))])
                    try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(replaced))])
                    if old.kind == .file { orphaned = try Self.orphan(db, old.fileID, queueDeletion: queueDeletion) }
                }
            }
            if let moved = try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))]) {
                try Self.touch(db, moved.parent, at: now)
                if moved.kind == .hardLink { try db.run("UPDATE entries SET ctime = ? WHERE ino = ?", [.int(now), .int(Int64(moved.linkIno))]) }
            }
            try Self.touch(db, newParent, at: now)
            try db.run("UPDATE entries SET parent = ?, name = ?, ctime = ? WHERE ino = ?",
                       [.int(Int64(newParent)), .text(newName), .int(now), .int(Int64(ino))])
            // Every file at or below the moved entry carries a new path.
            try db.run("""
                WITH RECURSIVE moved(ino) AS (SELECT ? UNION ALL SELECT e.ino FROM entries e JOIN moved ON e.parent = moved.ino)
                INSERT OR REPLACE INTO metadata_due(file_id, ino, marked)
                SELECT e.file_id, e.ino, ? FROM entries e JOIN moved ON e.ino = moved.ino WHERE e.kind = ? AND e.file_id IS NOT NULL
                """, [.int(Int64(ino)), .int(POSIX.nowNanoseconds()), .int(EntryKind.file.rawValue)])
            return orphaned
        }
    }

    // MARK: Upload journal

    public func beginUpload(ino: UInt64, spool: String, size: Int64, oldFileID: String?, inPlace: Bool) throws(FSError) -> Int64 {
        try with { (db: SQLiteDatabase) throws(FSError) -> Int64 in
            try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))])
            try db.run("INSERT INTO pending(ino, spool, size, old_file_id, in_place, started) VALUES(?,?,?,?,?,?)",
                       [.int(Int64(ino)), .text(spool), .int(size), .optional(oldFileID), .int(inPlace ? 1 : 0), .int(POSIX.nowNanoseconds())])
            return db.lastInsertRowID
        }
    }

    /// Records the ID the cluster gave, right after the upload answered.
    public func uploaded(pending id: Int64, fileID: String) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in
            try db.run("UPDATE pending SET new_file_id = ? WHERE id = ?", [.text(fileID), .int(id)])
        }
    }

    public func pendingUploads() throws(FSError) -> [PendingUpload] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [PendingUpload] in
            var list: [PendingUpload] = []
            try db.query("SELECT id, ino, spool, size, old_file_id, new_file_id, in_place FROM pending ORDER BY id") { (row: SQLRow) throws(FSError) in
                list.append(PendingUpload(
                    id: row.int(0), ino: UInt64(row.int(1)), spool: row.text(2) ?? "", size: row.int(3),
                    oldFileID: row.isNull(4) ? nil : row.text(4), newFileID: row.isNull(5) ? nil : row.text(5), inPlace: row.int(6) != 0))
            }
            return list
        }
    }

    public func dropPending(_ id: Int64) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in try db.run("DELETE FROM pending WHERE id = ?", [.int(id)]) }
    }

    /// Forgets every upload journaled for `ino` (its spool is being dropped).
    public func dropPendingUploads(ino: UInt64) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in try db.run("DELETE FROM pending WHERE ino = ?", [.int(Int64(ino))]) }
    }

    /// Commits an upload: the entry points at `newID` with `size` (and optionally a new
    /// mtime, and a ctime it does not go below), the generated row of the new ID exists under `generatedParent`, the journal
    /// row is gone, and the replaced ID is queued for deletion when nothing refers to it.
    /// Returns (entry, orphaned old ID). Fails with ENOENT when the entry was removed meanwhile.
    public func commitUpload(pending id: Int64, ino: UInt64, newID: String, size: Int64, mtime: Int64? = nil, ctime: Int64? = nil, generatedParent: UInt64?, generated: Entry?, queueDeletion: Bool) throws(FSError) -> (Entry, String?) {
        try transaction { (db: SQLiteDatabase) throws(FSError) -> (Entry, String?) in
            try db.run("DELETE FROM pending WHERE id = ?", [.int(id)])
            guard var entry = try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))]), entry.kind == .file else {
                throw FSError(.notFound, "inode \(ino) was removed during its upload")
            }
            let old = entry.fileID
            entry.fileID = newID
            entry.size = size
            entry.state = Entry.committed
            if let mtime { entry.mtime = mtime }
            if let ctime { entry.ctime = max(entry.ctime, ctime) }
            try db.run("UPDATE entries SET file_id = ?, size = ?, mtime = ?, ctime = ?, state = 0 WHERE ino = ?",
                       [.text(newID), .int(size), .int(entry.mtime), .int(entry.ctime), .int(Int64(ino))])
            try Self.markMetadataDue(db, newID, ino: ino)
            if generatedParent != nil, var generated {
                generated.fileID = newID
                _ = try Self.insert(db, generated, orExisting: true)
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

    static func markMetadataDue(_ db: SQLiteDatabase, _ fileID: String, ino: UInt64) throws(FSError) {
        try db.run("INSERT OR REPLACE INTO metadata_due(file_id, ino, marked) VALUES(?,?,?)",
                   [.text(fileID), .int(Int64(ino)), .int(POSIX.nowNanoseconds())])
    }

    public func markMetadataDue(_ fileID: String, ino: UInt64) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in try Self.markMetadataDue(db, fileID, ino: ino) }
    }

    public func metadataDue(limit: Int = 1000) throws(FSError) -> [MetadataDue] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [MetadataDue] in
            var list: [MetadataDue] = []
            try db.query("SELECT file_id, ino, marked FROM metadata_due ORDER BY marked LIMIT ?", [.int(Int64(limit))]) { (row: SQLRow) throws(FSError) in
                list.append(MetadataDue(fileID: row.text(0) ?? "", ino: UInt64(row.int(1)), marked: row.int(2)))
            }
            return list
        }
    }

    /// Clears markings that were written (a file marked again meanwhile stays due).
    public func metadataWritten(_ done: [MetadataDue]) throws(FSError) {
        guard !done.isEmpty else { return }
        try transaction { (db: SQLiteDatabase) throws(FSError) in
            for item in done {
                try db.run("DELETE FROM metadata_due WHERE file_id = ? AND marked = ?", [.text(item.fileID), .int(item.marked)])
            }
        }
    }

    // MARK: Deletions journal

    public func deletions() throws(FSError) -> [String] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [String] in
            var list: [String] = []
            try db.query("SELECT file_id FROM deletions ORDER BY since") { (row: SQLRow) throws(FSError) in list.append(row.text(0) ?? "") }
            return list
        }
    }

    /// Is `fileID` still waiting to be deleted from the cluster?
    public func deletionQueued(_ fileID: String) throws(FSError) -> Bool {
        try with { (db: SQLiteDatabase) throws(FSError) -> Bool in
            (try db.firstInt("SELECT COUNT(*) FROM deletions WHERE file_id = ?", [.text(fileID)]) ?? 0) > 0
        }
    }

    public func deleted(_ fileID: String) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in try db.run("DELETE FROM deletions WHERE file_id = ?", [.text(fileID)]) }
    }

    // MARK: Streamed uploads

    /// Records an appender file that a streamed upload created (before any name refers to it),
    /// so that it is deleted if the mount dies before the commit.
    public func streamStarted(_ fileID: String, ino: UInt64) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in
            try db.run("INSERT OR REPLACE INTO streams(file_id, ino, since) VALUES(?,?,?)", [.text(fileID), .int(Int64(ino)), .int(POSIX.nowNanoseconds())])
        }
    }

    /// The stream is over: its appender file became the committed file (or was renamed by
    /// REGENERATE), or, when `abandoned`, it is queued for deletion from the cluster.
    public func streamEnded(_ fileID: String, abandoned: Bool) throws(FSError) {
        try transaction { (db: SQLiteDatabase) throws(FSError) in
            try db.run("DELETE FROM streams WHERE file_id = ?", [.text(fileID)])
            if abandoned {
                try db.run("INSERT OR REPLACE INTO deletions(file_id, since) VALUES(?, ?)", [.text(fileID), .int(POSIX.nowNanoseconds())])
            }
        }
    }

    /// Appender files of streams in progress (journaled and not yet ended).
    public func streamCount() throws(FSError) -> Int {
        try with { (db: SQLiteDatabase) throws(FSError) -> Int in try Self.streamCount(db) }
    }

    private static func streamCount(_ db: SQLiteDatabase) throws(FSError) -> Int {
        Int(try db.firstInt("SELECT COUNT(*) FROM streams", []) ?? 0)
    }

    /// After a crash: every stream left is abandoned (queued for deletion). Returns how many.
    public func abandonStreams() throws(FSError) -> Int {
        try transaction { (db: SQLiteDatabase) throws(FSError) -> Int in
            let count = try Self.streamCount(db)
            try db.run("INSERT OR REPLACE INTO deletions(file_id, since) SELECT file_id, since FROM streams")
            try db.run("DELETE FROM streams")
            return count
        }
    }

    // MARK: Groups and provisional rows

    public func saveGroups(_ groups: [GroupInfo]) throws(FSError) {
        try transaction { (db: SQLiteDatabase) throws(FSError) in
            for group in groups {
                try db.run("INSERT OR REPLACE INTO groups(name, store_paths, subdirs) VALUES(?,?,?)",
                           [.text(group.name), .int(group.storePathCount), .int(group.subdirCount)])
            }
        }
    }

    public func savedGroups() throws(FSError) -> [GroupInfo] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [GroupInfo] in
            var list: [GroupInfo] = []
            try db.query("SELECT name, store_paths, subdirs FROM groups ORDER BY name") { (row: SQLRow) throws(FSError) in
                list.append(GroupInfo(name: row.text(0) ?? "", storePathCount: Int(row.int(1)), subdirCount: Int(row.int(2))))
            }
            return list
        }
    }

    /// Provisional rows (created, never uploaded) that no pending upload will finish.
    public func abandonedProvisional() throws(FSError) -> [Entry] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [Entry] in
            try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE state = 1 AND ino NOT IN (SELECT ino FROM pending)", [])
        }
    }

    /// Every user file with its path and ID, one line per name (for `fdfs-mount export`).
    public func exportAll() throws(FSError) -> [(path: String, fileID: String)] {
        try with { (db: SQLiteDatabase) throws(FSError) -> [(path: String, fileID: String)] in
            let names = try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE kind IN (2, 13) AND parent != 0", [])
            var result: [(path: String, fileID: String)] = []
            for name in names {
                guard let file = try Self.resolved(db, name), file.kind == .file, let fileID = file.fileID, !file.isDetached else { continue }
                let path = try Self.ancestry(db, name.ino).map(\.name).joined(separator: "/")
                result.append((path, fileID))
            }
            return result.sorted { $0.path < $1.path }
        }
    }

    public func setting(_ key: String) throws(FSError) -> String? {
        try with { (db: SQLiteDatabase) throws(FSError) -> String? in
            var value: String?
            try db.query("SELECT value FROM settings WHERE key = ?", [.text(key)]) { (row: SQLRow) throws(FSError) in value = row.text(0) }
            return value
        }
    }

    public func setSetting(_ key: String, _ value: String) throws(FSError) {
        try with { (db: SQLiteDatabase) throws(FSError) in
            try db.run("INSERT OR REPLACE INTO settings(key, value) VALUES(?, ?)", [.text(key), .text(value)])
        }
    }
}
