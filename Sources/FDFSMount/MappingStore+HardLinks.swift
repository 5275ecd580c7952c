/// Hard links and link counts. An inode's first name is its own row; every further name is a
/// ``EntryKind/hardLink`` row that points at the inode (`link_ino`). Attributes and the cluster
/// file ID live on the inode, so every name sees the same content and a commit that repoints
/// the inode at a new file ID repoints all its names at once.
extension MappingStore {
    /// `row` itself, or for a hard link the inode it names (with the link's parent and name).
    static func resolved(_ db: any MetadataConnection, _ row: Entry) throws(FSError) -> Entry? {
        guard row.kind == .hardLink else { return row }
        guard var inode = try fetchEntry(db, "SELECT \(columns) FROM entries WHERE ino = ?", [.int(Int64(row.linkIno))]) else { return nil }
        inode.parent = row.parent
        inode.name = row.name
        return inode
    }

    /// Gives inode `ino` the further name `name` in `parent`: the directory's mtime and ctime
    /// and the inode's ctime change. Returns the inode as seen through the new name.
    public func link(_ ino: UInt64, into parent: UInt64, as name: String) throws(FSError) -> Entry {
        try transaction { (db: any MetadataConnection) throws(FSError) -> Entry in
            let now = POSIX.nowNanoseconds()
            try Self.touchLocked(db, [parent], at: now)
            guard var inode = try Self.lockedEntry(db, ino), !inode.isDetached, inode.kind != .hardLink else {
                throw FSError(.notFound, "inode \(ino) has no name")
            }
            _ = try Self.insert(db, Entry(ino: 0, parent: parent, name: name, kind: .hardLink, mode: 0, uid: 0, gid: 0,
                                          atime: now, mtime: now, ctime: now, size: 0, fileID: nil, target: nil,
                                          state: Entry.committed, linkIno: ino), orExisting: false)
            try db.run("UPDATE entries SET ctime = ? WHERE ino = ?", [.int(now), .int(Int64(ino))])
            inode.ctime = now
            inode.parent = parent
            inode.name = name
            return inode
        }
    }

    /// Removes the name `row` (a ``nameRow(_:_:)``) when its inode has another: the inode and
    /// its content stay, its ctime and the directory's mtime and ctime change. When `row` is
    /// the inode's own row, the inode takes over its oldest hard link's name. Returns false,
    /// changing nothing, when `row` is the inode's only name (the caller removes the inode).
    public func dropName(_ row: Entry) throws(FSError) -> Bool {
        try transaction { (db: any MetadataConnection) throws(FSError) -> Bool in try Self.dropName(db, row, at: POSIX.nowNanoseconds(), session: session) }
    }

    static func dropName(_ db: any MetadataConnection, _ row: Entry, at now: Int64, session: String) throws(FSError) -> Bool {
        if row.kind == .hardLink {
            try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(row.ino))])
            try db.run("UPDATE entries SET ctime = ? WHERE ino = ?", [.int(now), .int(Int64(row.linkIno))])
            try touch(db, row.parent, at: now)
            return true
        }
        guard let link = try fetchEntry(db, "SELECT \(columns) FROM entries WHERE kind = 13 AND link_ino = ? ORDER BY ino LIMIT 1",
                                        [.int(Int64(row.ino))]) else { return false }
        try db.run("DELETE FROM entries WHERE ino = ?", [.int(Int64(link.ino))])
        try db.run("UPDATE entries SET parent = ?, name = ?, ctime = ? WHERE ino = ?",
                   [.int(Int64(link.parent)), .text(link.name), .int(now), .int(Int64(row.ino))])
        try touch(db, row.parent, at: now)
        // The file's cluster metadata carries its first name's path.
        if row.kind == .file, let fileID = row.fileID { try markMetadataDue(db, fileID, ino: row.ino, session: session) }
        return true
    }

    /// How many hard link rows name inode `ino` (its names besides its own row). `cached` as
    /// for ``entry(_:cached:)``: the count read with the row (PostgreSQL) may answer.
    public func linkCount(_ ino: UInt64, cached: Bool = false) throws(FSError) -> Int {
        try count(ino, cached: cached, "SELECT COUNT(*) FROM entries WHERE kind = 13 AND link_ino = ?")
    }

    /// How many directories users made directly in directory `ino` (an index count). `cached`
    /// as for ``linkCount(_:cached:)``.
    public func subdirectoryCount(_ ino: UInt64, cached: Bool = false) throws(FSError) -> Int {
        try count(ino, cached: cached, "SELECT COUNT(*) FROM entries WHERE parent = ? AND kind = 3")
    }

    private func count(_ ino: UInt64, cached: Bool, _ sql: String) throws(FSError) -> Int {
        if cached, let hit = cache?.links(ino) { return hit }
        let generation = cache?.generation ?? 0
        let count = try read { (db: any MetadataConnection) throws(FSError) -> Int in Int(try db.firstInt(sql, [.int(Int64(ino))]) ?? 0) }
        if cached { cache?.fill(generation, links: [(ino, count)]) }
        return count
    }
}
