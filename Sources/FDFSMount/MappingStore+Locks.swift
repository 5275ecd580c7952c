/// Row locks for changes that several mounts may make to the same names at once.
///
/// On PostgreSQL (READ COMMITTED) every statement sees what was committed when it started, so a
/// check in one statement and a change in the next can be overtaken by another mount. The
/// store's transactions therefore lock the rows they decide on first: a directory by touching
/// its times (`UPDATE … RETURNING`, which also tells whether it still exists), a file or a name
/// with `SELECT … FOR UPDATE`. A transaction that finds another mount's lock waits for it and
/// then sees its result. SQLite has one writer at a time, so there the same statements (without
/// `FOR UPDATE`, which it does not know) lock nothing and change nothing in its behaviour.
extension MappingStore {
    /// ` FOR UPDATE` on PostgreSQL, nothing on SQLite.
    static func forUpdate(_ db: any MetadataConnection) -> String {
        db.engine == .postgres ? " FOR UPDATE" : ""
    }

    /// Row `ino`, locked until the transaction ends (nil when it is gone).
    static func lockedEntry(_ db: any MetadataConnection, _ ino: UInt64) throws(FSError) -> Entry? {
        try fetchEntry(db, "SELECT \(columns) FROM entries WHERE ino = ?\(forUpdate(db))", [.int(Int64(ino))])
    }

    /// The row of the name `name` in `parent` as stored, locked until the transaction ends.
    static func lockedNameRow(_ db: any MetadataConnection, _ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try fetchEntry(db, "SELECT \(columns) FROM entries WHERE parent = ? AND name = ?\(forUpdate(db))", [.int(Int64(parent)), .text(name)])
    }

    /// Sets the mtime and ctime of directories `inos` to `now`, locking their rows in inode
    /// order (two transactions that lock the same directories cannot deadlock). Fails with
    /// ENOENT when one of them is gone (removed by another mount meanwhile).
    static func touchLocked(_ db: any MetadataConnection, _ inos: [UInt64], at now: Int64) throws(FSError) {
        for ino in Set(inos).sorted() {
            guard try db.firstInt("UPDATE entries SET mtime = ?, ctime = ? WHERE ino = ? RETURNING ino", [.int(now), .int(now), .int(Int64(ino))]) != nil else {
                throw FSError(.notFound, "directory \(ino) was removed")
            }
        }
    }

    /// Removes the empty directory `ino` named `name` in `parent`, with both rows locked: a
    /// name created in it by another mount either committed first (ENOTEMPTY) or waits and
    /// then finds its directory gone (ENOENT); no row is left under a removed directory.
    public func removeDirectory(_ ino: UInt64, in parent: UInt64, named name: String) throws(FSError) {
        try transaction { (db: any MetadataConnection) throws(FSError) in
            try Self.touchLocked(db, [parent, ino], at: POSIX.nowNanoseconds())
            guard let row = try Self.lockedNameRow(db, parent, name), row.ino == ino else { throw FSError(.notFound, "\(name) was removed or replaced") }
            if try db.firstInt("SELECT 1 FROM entries WHERE parent = ? AND kind IN (2, 3, 4, 9, 10, 11, 12, 13) LIMIT 1", [.int(Int64(ino))]) != nil { throw FSError(.notEmpty) }
            try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(ino))])
        }
    }
}
