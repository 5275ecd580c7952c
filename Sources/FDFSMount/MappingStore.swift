import FDFSProtocol
import Logging
import Synchronization

/// The mapping store: the namespace (entries), the journal of pending uploads, appender files
/// being streamed, cluster deletions still to do, and the last known group layout. One façade
/// over an engine (``MetadataConnection``): SQLite in WAL mode in the state directory (the
/// default), or a PostgreSQL database that several mounts share (``MetadataLocation``).
/// Every call is synchronous and runs on one connection of a ``MetadataPool`` (one on SQLite, up
/// to ``postgresConnections`` on PostgreSQL). On PostgreSQL, the reads
/// libfuse threads ask most (``entry(_:)``, ``child(_:_:)``, filled by ``children(_:)``) are
/// answered from a ``MetadataCache`` for up to `attr_timeout=`.
public final class MappingStore: Sendable {
    public static let rootIno: UInt64 = 1
    private let db: MetadataPool
    /// Short-lived answers of a remote engine (nil on SQLite, or with a zero TTL).
    let cache: MetadataCache?
    /// Where the store is: the SQLite file, or the PostgreSQL URL without its password.
    public let path: String
    public let engine: MetadataEngineKind
    /// The session whose journal rows this store writes (schema version 4): the mount's
    /// session ID on PostgreSQL; `""`, the one implicit session, on SQLite and for the tools.
    public let session: String

    static let columns = "ino, parent, name, kind, mode, uid, gid, atime, mtime, ctime, size, file_id, target, state, rdev, link_ino"

    /// Opens (or creates) the SQLite store at `path`, migrating an older schema.
    public convenience init(path: String, readOnly: Bool = false, session: String = "") throws(FSError) {
        let database = try SQLiteDatabase(path: path, readOnly: readOnly)
        if !readOnly {
            try database.execute("PRAGMA journal_mode=WAL")
            try database.execute("PRAGMA synchronous=NORMAL")
        }
        try self.init(connection: database, name: path, readOnly: readOnly, session: session)
    }

    /// Opens the store at `location`: SQLite's lives in `stateDir`. `session` tags the journal
    /// rows written through this store on PostgreSQL (SQLite has one implicit session, `""`).
    /// On PostgreSQL, answers are cached for `cacheTTL` seconds (0: no cache; see
    /// ``MetadataCache`` for the rule) and a statement the server does not answer within
    /// `timeout` seconds fails with EIO; `logger` gets its outages (one line when one starts,
    /// one when it ends).
    public convenience init(location: MetadataLocation, stateDir: String, readOnly: Bool = false, session: String = "", cacheTTL: Double = 0,
                            timeout: Double = 5, logger: Logger = Logger(label: "fdfs.meta.postgres")) throws(FSError) {
        switch location {
        case .sqlite:
            try self.init(path: stateDir + "/mapping.db", readOnly: readOnly)
        case let .postgres(postgres):
            let outage = MetadataOutage(), backends = BackendIDs()
            try self.init(connection: PostgresMetadataConnection(location: postgres, timeout: timeout, outage: outage, backends: backends, logger: logger),
                          name: postgres.description,
                          readOnly: readOnly, session: session, cache: cacheTTL > 0 ? MetadataCache(ttl: cacheTTL) : nil,
                          poolSize: Self.postgresConnections) { () throws(FSError) -> sending any MetadataConnection in
                try PostgresMetadataConnection(location: postgres, timeout: timeout, outage: outage, backends: backends, logger: logger)
            }
        }
    }

    /// Connections a PostgreSQL store opens at most (the extra ones only under concurrency).
    static let postgresConnections = 4

    /// On PostgreSQL: where the namespace is and the backend PIDs of the store's connections,
    /// for a ``NamespaceListener`` that hears the other mounts' changes.
    let postgres: (location: PostgresLocation, backends: BackendIDs)?

    init(connection: sending any MetadataConnection, name: String, readOnly: Bool, session: String = "", cache: MetadataCache? = nil, poolSize: Int = 1,
         open: (@Sendable () throws(FSError) -> sending any MetadataConnection)? = nil) throws(FSError) {
        try MetadataSchema.prepare(connection, name: name, readOnly: readOnly)
        path = name
        engine = connection.engine
        self.session = session
        if let connection = connection as? PostgresMetadataConnection {
            postgres = (connection.location, connection.backends)
        } else {
            postgres = nil
        }
        db = MetadataPool(first: connection, size: poolSize, open: open)
        self.cache = cache
    }

    /// The schema version of the store (``MetadataSchema/currentVersion`` once opened for writing).
    public func schemaVersion() throws(FSError) -> Int64 {
        try read { (db: any MetadataConnection) throws(FSError) -> Int64 in try MetadataSchema.version(db) }
    }

    /// Runs `body` with a connection (one caller at a time on each); the cache is emptied
    /// after it (it may have changed `entries`).
    func with<T: Sendable>(_ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        defer { cache?.invalidate() }
        return try read(body)
    }

    /// Runs `body`, which changes exactly the rows `inodes` and the names `names` of `entries`
    /// (the inodes a name stood for included: a removed name need not list its inode), with a
    /// connection; only those are forgotten by the cache (``MetadataCache/forget(inodes:names:)``).
    func with<T: Sendable>(forgetting inodes: [UInt64], names: [(UInt64, String)] = [],
                           _ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        defer { cache?.forget(inodes: inodes, names: names) }
        return try read(body)
    }

    /// Runs `body`, which leaves the `entries` table as it is (it reads, or writes journal,
    /// session or settings rows), with a connection; the cache stays.
    func read<T: Sendable>(_ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        try db.with(body)
    }

    /// Runs `body` in one transaction (`entries: false`: one that leaves `entries` alone, as
    /// for ``read(_:)``).
    func transaction<T: Sendable>(entries: Bool = true, _ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        guard entries else {
            return try read { (database: any MetadataConnection) throws(FSError) -> T in
                try database.transaction { () throws(FSError) -> T in try body(database) }
            }
        }
        return try with { (database: any MetadataConnection) throws(FSError) -> T in
            try database.transaction { () throws(FSError) -> T in try body(database) }
        }
    }

    /// The columns of ``columns`` prefixed with a table alias (`e.ino, e.parent, …`).
    static func prefixedColumns(_ alias: String) -> String {
        columns.split(separator: ",").map { "\(alias).\($0.drop(while: { $0 == " " }))" }.joined(separator: ", ")
    }

    /// A name row and, for a hard link, its inode's row (columns `at` 0 and 16), in one query.
    static let joined = "SELECT \(prefixedColumns("e")), \(prefixedColumns("l")) FROM entries e LEFT JOIN entries l ON e.kind = \(EntryKind.hardLink.rawValue) AND l.ino = e.link_ino"

    /// ``joined`` with a 33rd column (32): the link count of the inode (see ``linkCountColumn(_:_:)``).
    static let joinedWithLinks = "SELECT \(prefixedColumns("e")), \(prefixedColumns("l")), \(linkCountColumn("COALESCE(l.ino, e.ino)", "COALESCE(l.kind, e.kind)")) FROM entries e LEFT JOIN entries l ON e.kind = \(EntryKind.hardLink.rawValue) AND l.ino = e.link_ino"

    /// The link count of the row with inode `ino` and kind `kind` (SQL expressions), as
    /// ``linkCount(_:cached:)`` and ``subdirectoryCount(_:cached:)`` count it: a directory's
    /// user subdirectories, anything else's hard link rows. Read with the row on PostgreSQL,
    /// where it saves GETATTR and LOOKUP a round trip each (two partial indexes answer it).
    static func linkCountColumn(_ ino: String, _ kind: String) -> String {
        let directories = [EntryKind.root, .group, .storePath, .subdirHigh, .subdirLow, .directory].map { String($0.rawValue) }.joined(separator: ", ")
        return "CASE WHEN \(kind) IN (\(directories)) THEN (SELECT COUNT(*) FROM entries s WHERE s.parent = \(ino) AND s.kind = \(EntryKind.directory.rawValue)) "
            + "ELSE (SELECT COUNT(*) FROM entries h WHERE h.kind = \(EntryKind.hardLink.rawValue) AND h.link_ino = \(ino)) END"
    }

    /// Whether the link counts are read with the rows (on PostgreSQL, where they are cached).
    var readsLinkCounts: Bool { cache != nil }

    /// Whether the cache knows `name` in `parent` not to exist (a LOOKUP's answer, at most
    /// `attr_timeout=` old). Always false without a cache.
    func knownAbsent(_ parent: UInt64, _ name: String) -> Bool {
        if case .some(.none) = cache?.child(parent, name) { return true }
        return false
    }

    /// The entry of a ``joined`` row: the inode a hard link names, carrying the link's parent
    /// and name; nil for a link whose inode is gone.
    static func joinedEntry(_ row: SQLRow) -> (name: Entry, inode: Entry?) {
        let name = entry(row)
        guard name.kind == .hardLink else { return (name, name) }
        guard !row.isNull(16) else { return (name, nil) }
        return (name, entry(row, at: 16))
    }

    static func entry(_ row: SQLRow, at base: Int32 = 0) -> Entry {
        Entry(
            ino: UInt64(row.int(base)), parent: UInt64(row.int(base + 1)), name: row.text(base + 2) ?? "",
            kind: EntryKind(rawValue: row.int(base + 3)) ?? .file, mode: UInt32(truncatingIfNeeded: row.int(base + 4)),
            uid: UInt32(truncatingIfNeeded: row.int(base + 5)), gid: UInt32(truncatingIfNeeded: row.int(base + 6)),
            atime: row.int(base + 7), mtime: row.int(base + 8), ctime: row.int(base + 9), size: row.int(base + 10),
            fileID: row.isNull(base + 11) ? nil : row.text(base + 11), target: row.isNull(base + 12) ? nil : row.text(base + 12), state: row.int(base + 13),
            rdev: UInt64(bitPattern: row.int(base + 14)), linkIno: UInt64(row.int(base + 15)))
    }

    static func fetchEntry(_ db: any MetadataConnection, _ sql: String, _ values: [SQLValue]) throws(FSError) -> Entry? {
        var found: Entry?
        try db.query(sql, values) { (row: SQLRow) throws(FSError) in found = entry(row) }
        return found
    }

    static func fetchEntries(_ db: any MetadataConnection, _ sql: String, _ values: [SQLValue]) throws(FSError) -> [Entry] {
        var found: [Entry] = []
        try db.query(sql, values) { (row: SQLRow) throws(FSError) in found.append(entry(row)) }
        return found
    }

    // MARK: Reads

    /// The row of inode `ino`. With `cached`, an answer up to `attr_timeout=` old may come from
    /// the cache (for LOOKUP and GETATTR, whose answers the kernel keeps as long; see
    /// ``MetadataCache``); without, the database answers (and the cache is refreshed).
    public func entry(_ ino: UInt64, cached: Bool = false) throws(FSError) -> Entry? {
        if cached, let hit = cache?.entry(ino) { return hit }
        let generation = cache?.generation ?? 0
        let withLinks = readsLinkCounts
        let found = try read { (db: any MetadataConnection) throws(FSError) -> (Entry, Int?)? in
            guard withLinks else {
                return try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))]).map { ($0, nil) }
            }
            var found: (Entry, Int?)?
            try db.query("SELECT \(Self.prefixedColumns("e")), \(Self.linkCountColumn("e.ino", "e.kind")) FROM entries e WHERE e.ino = ?", [.int(Int64(ino))]) { (row: SQLRow) throws(FSError) in
                found = (Self.entry(row), Int(row.int(16)))
            }
            return found
        }
        if let found { cache?.fill(generation, inodes: [found.0], links: found.1.map { [(found.0.ino, $0)] } ?? []) }
        return found?.0
    }

    /// The inode named `name` in `parent` (a hard link resolved to its inode, carrying the
    /// link's parent and name). One query, joined with the inode of a hard link. `cached` as
    /// for ``entry(_:cached:)`` (a negative answer is cached too).
    public func child(_ parent: UInt64, _ name: String, cached: Bool = false) throws(FSError) -> Entry? {
        if cached, let hit = cache?.child(parent, name) { return hit }
        let generation = cache?.generation ?? 0
        let found = try joinedName(parent, name, withLinks: readsLinkCounts)
        let inode = found?.inode
        let links = found.flatMap { found in found.inode.flatMap { inode in found.links.map { (inode.ino, $0) } } }
        cache?.fill(generation, inodes: found?.row.map { [$0] } ?? [], names: [(parent, name, inode)], links: links.map { [$0] } ?? [])
        return inode
    }

    /// The name `name` in `parent` (``joined``): its row, the inode's row as stored (`row`),
    /// the inode seen through the name (`inode`), and with `withLinks` the inode's link count.
    private func joinedName(_ parent: UInt64, _ name: String, withLinks: Bool) throws(FSError) -> (name: Entry, row: Entry?, inode: Entry?, links: Int?)? {
        try read { (db: any MetadataConnection) throws(FSError) -> (name: Entry, row: Entry?, inode: Entry?, links: Int?)? in
            var found: (name: Entry, row: Entry?, inode: Entry?, links: Int?)?
            try db.query("\(withLinks ? Self.joinedWithLinks : Self.joined) WHERE e.parent = ? AND e.name = ?", [.int(Int64(parent)), .text(name)]) { (row: SQLRow) throws(FSError) in
                let (name, inode) = Self.joinedEntry(row)
                found = (name, inode, inode.map { Self.named($0, by: name) }, withLinks ? Int(row.int(32)) : nil)
            }
            return found
        }
    }

    /// `inode` as seen through the name row `name` (itself, or a hard link to it).
    static func named(_ inode: Entry, by name: Entry) -> Entry {
        var seen = inode
        seen.parent = name.parent
        seen.name = name.name
        return seen
    }

    /// The row of the name `name` in `parent` as stored (a ``EntryKind/hardLink`` row is not
    /// resolved).
    public func nameRow(_ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try read { (db: any MetadataConnection) throws(FSError) -> Entry? in try Self.nameRow(db, parent, name) }
    }

    /// The name `name` in `parent` as stored (``nameRow(_:_:)``), the inode it names
    /// (``child(_:_:cached:)``; nil for a hard link whose inode is gone) and that inode's link
    /// count (``linkCount(_:cached:)``, or for a directory ``subdirectoryCount(_:cached:)``):
    /// one query, from the database.
    public func nameAndInode(_ parent: UInt64, _ name: String) throws(FSError) -> (name: Entry, inode: Entry?, links: Int)? {
        try joinedName(parent, name, withLinks: true).map { ($0.name, $0.inode, $0.links ?? 0) }
    }

    static func nameRow(_ db: any MetadataConnection, _ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try fetchEntry(db, "SELECT \(columns) FROM entries WHERE parent = ? AND name = ?", [.int(Int64(parent)), .text(name)])
    }

    /// The inodes named in `parent`, hard links resolved (each with its own name).
    /// One query (hard links joined with their inodes); fills the cache for the lookups and
    /// getattrs that follow a listing (`ls -l`).
    public func children(_ parent: UInt64) throws(FSError) -> [Entry] {
        let generation = cache?.generation ?? 0
        let withLinks = readsLinkCounts
        let rows = try read { (db: any MetadataConnection) throws(FSError) -> [(name: Entry, inode: Entry?, links: Int)] in
            var rows: [(name: Entry, inode: Entry?, links: Int)] = []
            try db.query("\(withLinks ? Self.joinedWithLinks : Self.joined) WHERE e.parent = ? ORDER BY e.name", [.int(Int64(parent))]) { (row: SQLRow) throws(FSError) in
                let (name, inode) = Self.joinedEntry(row)
                rows.append((name, inode, withLinks ? Int(row.int(32)) : 0))
            }
            return rows
        }
        let list = rows.compactMap { row in row.inode.map { Self.named($0, by: row.name) } }
        cache?.fill(generation, inodes: rows.compactMap(\.inode), names: list.map { (parent, $0.name, $0) },
                    links: withLinks ? rows.compactMap { row in row.inode.map { ($0.ino, row.links) } } : [])
        return list
    }

    public func hasChildren(_ parent: UInt64) throws(FSError) -> Bool {
        try read { (db: any MetadataConnection) throws(FSError) -> Bool in
            try db.firstInt("SELECT 1 FROM entries WHERE parent = ? AND kind IN (2, 3, 4, 9, 10, 11, 12, 13) LIMIT 1", [.int(Int64(parent))]) != nil
        }
    }

    /// The chain of entries from the root's child down to `ino` (empty for the root).
    public func ancestry(_ ino: UInt64) throws(FSError) -> [Entry] {
        try read { (db: any MetadataConnection) throws(FSError) -> [Entry] in try Self.ancestry(db, ino) }
    }

    /// One recursive query (one round trip, however deep `ino` lies).
    static func ancestry(_ db: any MetadataConnection, _ ino: UInt64) throws(FSError) -> [Entry] {
        guard ino != rootIno else { return [] }
        let chain = try fetchEntries(db, """
            WITH RECURSIVE chain AS (
              SELECT \(columns), 0 AS depth FROM entries WHERE ino = ?
              UNION ALL
              SELECT \(prefixedColumns("e")), c.depth + 1 FROM entries e JOIN chain c ON e.ino = c.parent WHERE c.parent <> ? AND c.depth <= 4096)
            SELECT \(columns) FROM chain ORDER BY depth DESC
            """, [.int(Int64(ino)), .int(Int64(rootIno))])
        guard let top = chain.first, top.parent == rootIno else {
            if chain.count > 4096 { throw FSError(.io, "namespace loop at inode \(ino)") }
            throw FSError(.notFound, "inode \(chain.first?.parent ?? ino) has no row")
        }
        return chain
    }

    /// The path of `ino` relative to the mount root (`group1/photos/a.jpg`).
    public func path(_ ino: UInt64) throws(FSError) -> String {
        try ancestry(ino).map(\.name).joined(separator: "/")
    }

}
