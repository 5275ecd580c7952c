import FDFSProtocol
import Synchronization

/// The mapping store: the namespace (entries), the journal of pending uploads, appender files
/// being streamed, cluster deletions still to do, and the last known group layout. One façade
/// over an engine (``MetadataConnection``): SQLite in WAL mode in the state directory (the
/// default), or a PostgreSQL database that several mounts share (``MetadataLocation``).
/// Every call is synchronous and serialised behind the store's lock.
public final class MappingStore: Sendable {
    public static let rootIno: UInt64 = 1
    private let db: Mutex<any MetadataConnection>
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
    public convenience init(location: MetadataLocation, stateDir: String, readOnly: Bool = false, session: String = "") throws(FSError) {
        switch location {
        case .sqlite:
            try self.init(path: stateDir + "/mapping.db", readOnly: readOnly)
        case let .postgres(postgres):
            try self.init(connection: PostgresMetadataConnection(location: postgres), name: postgres.description, readOnly: readOnly, session: session)
        }
    }

    /// On PostgreSQL: where the namespace is and the backend PID of the store's connection,
    /// for a ``NamespaceListener`` that hears the other mounts' changes.
    let postgres: (location: PostgresLocation, backend: BackendID)?

    init(connection: sending any MetadataConnection, name: String, readOnly: Bool, session: String = "") throws(FSError) {
        try MetadataSchema.prepare(connection, name: name, readOnly: readOnly)
        path = name
        engine = connection.engine
        self.session = session
        if let connection = connection as? PostgresMetadataConnection {
            postgres = (connection.location, connection.backend)
        } else {
            postgres = nil
        }
        db = Mutex(connection)
    }

    /// The schema version of the store (``MetadataSchema/currentVersion`` once opened for writing).
    public func schemaVersion() throws(FSError) -> Int64 {
        try with { (db: any MetadataConnection) throws(FSError) -> Int64 in try MetadataSchema.version(db) }
    }

    /// Runs `body` with the database, under the store's lock.
    func with<T: Sendable>(_ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        try db.withLock { (database: inout any MetadataConnection) throws(FSError) -> T in try body(database) }
    }

    /// Runs `body` in one transaction.
    func transaction<T: Sendable>(_ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        try with { (database: any MetadataConnection) throws(FSError) -> T in
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

    public func entry(_ ino: UInt64) throws(FSError) -> Entry? {
        try with { (db: any MetadataConnection) throws(FSError) -> Entry? in
            try Self.fetchEntry(db, "SELECT \(Self.columns) FROM entries WHERE ino = ?", [.int(Int64(ino))])
        }
    }

    /// The inode named `name` in `parent` (a hard link resolved to its inode, carrying the
    /// link's parent and name).
    public func child(_ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try with { (db: any MetadataConnection) throws(FSError) -> Entry? in
            guard let row = try Self.nameRow(db, parent, name) else { return nil }
            return try Self.resolved(db, row)
        }
    }

    /// The row of the name `name` in `parent` as stored (a ``EntryKind/hardLink`` row is not
    /// resolved).
    public func nameRow(_ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try with { (db: any MetadataConnection) throws(FSError) -> Entry? in try Self.nameRow(db, parent, name) }
    }

    static func nameRow(_ db: any MetadataConnection, _ parent: UInt64, _ name: String) throws(FSError) -> Entry? {
        try fetchEntry(db, "SELECT \(columns) FROM entries WHERE parent = ? AND name = ?", [.int(Int64(parent)), .text(name)])
    }

    /// The inodes named in `parent`, hard links resolved (each with its own name).
    public func children(_ parent: UInt64) throws(FSError) -> [Entry] {
        try with { (db: any MetadataConnection) throws(FSError) -> [Entry] in
            var list: [Entry] = []
            for row in try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE parent = ? ORDER BY name", [.int(Int64(parent))]) {
                if let inode = try Self.resolved(db, row) { list.append(inode) }
            }
            return list
        }
    }

    public func hasChildren(_ parent: UInt64) throws(FSError) -> Bool {
        try with { (db: any MetadataConnection) throws(FSError) -> Bool in
            try db.firstInt("SELECT 1 FROM entries WHERE parent = ? AND kind IN (2, 3, 4, 9, 10, 11, 12, 13) LIMIT 1", [.int(Int64(parent))]) != nil
        }
    }

    /// The chain of entries from the root's child down to `ino` (empty for the root).
    public func ancestry(_ ino: UInt64) throws(FSError) -> [Entry] {
        try with { (db: any MetadataConnection) throws(FSError) -> [Entry] in try Self.ancestry(db, ino) }
    }

    static func ancestry(_ db: any MetadataConnection, _ ino: UInt64) throws(FSError) -> [Entry] {
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

}
