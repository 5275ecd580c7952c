/// `fdfs-mount meta migrate`: copies a whole namespace from one mapping store into an empty
/// one (SQLite → PostgreSQL is the point; any pair of engines works), in one transaction on
/// the target, and checks the result before committing.
///
/// What is carried, row for row with the same inode numbers: `entries` (names, directories,
/// symlinks, special files, hard links, the synthetic and generated-name rows, files unlinked
/// while open and names not yet uploaded, which the next mount start cleans up as after a
/// crash), `deletions` (cluster files still to delete), `streams` (appender files of
/// interrupted streamed uploads), `metadata_due` (cluster metadata still to write), `groups`
/// (the last known layout) and `settings`. Not carried: `mount_sessions` (they describe running
/// mounts, and there must be none) and the schema version (the target has this build's).
///
/// Refused, changing nothing: pending uploads in the source (their spool files live in one
/// mount's state directory: mount it once more, which resumes them, and unmount cleanly), a
/// live mount session on either side, and a target that is not empty (any name besides the
/// root, or any journal row).
public enum MetadataTransfer {
    /// What a migration copied and how it checked it.
    public struct Report: Sendable {
        /// Rows copied per table, in copy order.
        public var tables: [(name: String, rows: Int)] = []
        /// Lines of `export --all`, identical on both sides.
        public var exportLines = 0
    }

    /// A table that a migration copies, its columns and which of them hold text.
    struct Table {
        let name: String
        let columns: [String]
        let textColumns: Set<String>
        let order: String
    }

    static let tables: [Table] = [
        Table(name: "entries", columns: MappingStore.columns.split(separator: ",").map { $0.trimmingCharacters() },
              textColumns: ["name", "file_id", "target"], order: "ino"),
        Table(name: "deletions", columns: ["file_id", "since"], textColumns: ["file_id"], order: "file_id"),
        Table(name: "streams", columns: ["file_id", "ino", "since"], textColumns: ["file_id"], order: "file_id"),
        Table(name: "metadata_due", columns: ["file_id", "ino", "marked"], textColumns: ["file_id"], order: "file_id"),
        Table(name: "groups", columns: ["name", "store_paths", "subdirs"], textColumns: ["name"], order: "name"),
        Table(name: "settings", columns: ["key", "value"], textColumns: ["key", "value"], order: "key"),
    ]

    /// Tables that must be empty in the target (the journals, and settings, which would clash).
    static let mustBeEmpty = ["pending", "deletions", "streams", "metadata_due", "settings"]

    /// A mount session whose heartbeat is younger than this is alive (as the mounts judge it).
    static let sessionLifetime: Int64 = 30

    /// Copies everything from `source` into `target` (see the type for what and when not).
    /// `now` is the Unix time in seconds, to tell live mount sessions from dead ones.
    public static func migrate(from source: MappingStore, to target: MappingStore, now: Int64) throws(FSError) -> Report {
        // One read transaction: a consistent snapshot of the source.
        let (snapshot, expected) = try source.transaction { (db: any MetadataConnection) throws(FSError) -> ([[[SQLValue]]], [ExportRow]) in
            if let pending = try db.firstInt("SELECT COUNT(*) FROM pending"), pending > 0 {
                throw FSError(.busy, "the source has \(pending) pending upload(s), whose spool files belong to its mount: mount it once more (the start resumes them) and unmount it cleanly, then migrate")
            }
            try refuseLiveSessions(db, now: now, side: "source")
            var snapshot: [[[SQLValue]]] = []
            for table in tables { snapshot.append(try read(db, table)) }
            return (snapshot, try exportOf(entries: snapshot[0]))
        }
        var report = Report()
        report.exportLines = expected.count
        try target.transaction { (db: any MetadataConnection) throws(FSError) in
            try refuseLiveSessions(db, now: now, side: "target")
            if let names = try db.firstInt("SELECT COUNT(*) FROM entries WHERE ino != ?", [.int(Int64(MappingStore.rootIno))]), names > 0 {
                throw FSError(.exists, "the target is not empty (\(names) rows besides the root): a migration only fills an empty namespace; nothing changed")
            }
            for table in mustBeEmpty {
                if let rows = try db.firstInt("SELECT COUNT(*) FROM \(table)"), rows > 0 {
                    throw FSError(.exists, "the target is not empty (\(rows) rows in \(table)): a migration only fills an empty namespace; nothing changed")
                }
            }
            // The root row is the source's (its attributes); groups are only a cache.
            try db.run("DELETE FROM entries")
            try db.run("DELETE FROM groups")
            for (table, rows) in zip(tables, snapshot) {
                try write(db, table, rows)
                report.tables.append((table.name, rows.count))
            }
            if db.engine == .postgres {
                // Inodes made from now on continue after the copied ones.
                try db.run("SELECT setval(pg_get_serial_sequence('entries', 'ino'), GREATEST((SELECT MAX(ino) FROM entries), 1))")
            }
            do throws(FSError) { try check(db, expected: expected, snapshot: snapshot, what: "before the commit") } catch {
                throw FSError(error.code, error.message + "; rolled back, the target is unchanged")
            }
        }
        // And once more as committed, read back.
        try target.with { (db: any MetadataConnection) throws(FSError) in
            do throws(FSError) { try check(db, expected: expected, snapshot: snapshot, what: "after the commit") } catch {
                throw FSError(error.code, error.message + "; the copy WAS committed: drop the target's schema before trying again")
            }
        }
        return report
    }

    static func refuseLiveSessions(_ db: any MetadataConnection, now: Int64, side: String) throws(FSError) {
        var live: [String] = []
        try db.query("SELECT host, pid FROM mount_sessions WHERE heartbeat >= ?", [.int(now - sessionLifetime)]) { (row: SQLRow) throws(FSError) in
            live.append("\(row.text(0) ?? "?") pid \(row.int(1))")
        }
        guard live.isEmpty else {
            throw FSError(.busy, "the \(side) is in use by \(live.count) mount(s) (\(live.joined(separator: ", "))): unmount them first")
        }
    }

    static func read(_ db: any MetadataConnection, _ table: Table) throws(FSError) -> [[SQLValue]] {
        var rows: [[SQLValue]] = []
        let text = table.columns.map { table.textColumns.contains($0) }
        try db.query("SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name) ORDER BY \(table.order)", []) { (row: SQLRow) throws(FSError) in
            var values: [SQLValue] = []
            values.reserveCapacity(text.count)
            for (i, isText) in text.enumerated() {
                let column = Int32(i)
                values.append(row.isNull(column) ? .null : isText ? .text(row.text(column) ?? "") : .int(row.int(column)))
            }
            rows.append(values)
        }
        return rows
    }

    /// Multi-row INSERTs of `batch` rows (one round trip each on PostgreSQL).
    static func write(_ db: any MetadataConnection, _ table: Table, _ rows: [[SQLValue]], batch: Int = 250) throws(FSError) {
        let tuple = "(" + Array(repeating: "?", count: table.columns.count).joined(separator: ",") + ")"
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(start + batch, rows.count)]
            let sql = "INSERT INTO \(table.name)(\(table.columns.joined(separator: ", "))) VALUES "
                + Array(repeating: tuple, count: chunk.count).joined(separator: ",")
            try db.run(sql, Array(chunk.joined()))
            start += chunk.count
        }
    }

    /// The target holds what the source held: every copied table row for row, and the same
    /// `export --all`.
    static func check(_ db: any MetadataConnection, expected: [ExportRow], snapshot: [[[SQLValue]]], what: String) throws(FSError) {
        var copied: [[[SQLValue]]] = []
        for (table, rows) in zip(tables, snapshot) {
            let read = try read(db, table)
            guard read.count == rows.count, zip(read, rows).allSatisfy({ $0.0.elementsEqual($0.1, by: same) }) else {
                throw FSError(.io, "check \(what): table \(table.name) differs from the source (\(read.count) rows, \(rows.count) expected)")
            }
            copied.append(read)
        }
        let exported = try exportOf(entries: copied[0])
        guard exported == expected else {
            let first = zip(exported, expected).first { $0.0 != $0.1 }
            throw FSError(.io, "check \(what): export differs from the source's (\(exported.count) lines, \(expected.count) expected; first difference: \(first.map { "\($0.0.line) ≠ \($0.1.line)" } ?? "length"))")
        }
    }

    /// `export --all` of copied `entries` rows (in ``tables``' column order, the store's).
    static func exportOf(entries rows: [[SQLValue]]) throws(FSError) -> [ExportRow] {
        try MappingStore.export(rows.map { MappingStore.entry(SQLRow(storage: .values($0))) }, all: true)
    }

    static func same(_ a: SQLValue, _ b: SQLValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.int(x), .int(y)): x == y
        case let (.text(x), .text(y)): x == y
        default: false
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
