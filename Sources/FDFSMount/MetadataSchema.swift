/// The mapping store's schema and its versions, for both engines. Each version is one step
/// from the one before; a store is brought to ``currentVersion`` when it opens, and a store
/// written by a newer fdfs-mount is refused (its layout is unknown here).
///
/// The version lives in `PRAGMA user_version` (SQLite) or the one-row table `schema_version`
/// (PostgreSQL). SQLite stores from before versioning have user_version 0 and the tables of
/// version 1 or 2: every step is written so that it may run on a store that already has it.
///
/// This is the one place where the engines' SQL differs: column types (`INTEGER PRIMARY KEY`
/// rowids vs `BIGINT` identities, `COLLATE "C"` for SQLite's bytewise name order) and how a
/// column is added when missing.
enum MetadataSchema {
    /// The schema this build writes.
    static let currentVersion: Int64 = 5

    /// Checks the version of the store behind `db` and migrates an older one (in one
    /// transaction). `readOnly` only checks that the store is not newer.
    static func prepare(_ db: any MetadataConnection, name: String, readOnly: Bool) throws(FSError) {
        if readOnly {
            try refuseNewer(try version(db), name: name)
            return
        }
        try db.transaction { () throws(FSError) in
            if db.engine == .postgres {
                // Two mounts starting at once: one migrates, the other waits and finds it done.
                try db.run("SELECT pg_advisory_xact_lock(7010596865)")
                try db.execute("CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)")
            }
            let found = try version(db)
            try refuseNewer(found, name: name)
            guard found < currentVersion else { return }
            for step in (found + 1)...currentVersion { try migrate(db, to: step) }
            try setVersion(db, currentVersion)
        }
        let now = POSIX.nowNanoseconds()
        try db.run("""
            INSERT INTO entries(ino, parent, name, kind, mode, uid, gid, atime, mtime, ctime) VALUES(1, 0, '', 0, 493, 0, 0, ?, ?, ?)
            ON CONFLICT DO NOTHING
            """, [.int(now), .int(now), .int(now)])
    }

    static func refuseNewer(_ found: Int64, name: String) throws(FSError) {
        guard found > currentVersion else { return }
        throw FSError(.invalid, "the mapping store \(name) has schema version \(found), newer than version \(currentVersion) that this fdfs-mount knows: use a newer fdfs-mount")
    }

    /// The schema version of the store (0: none yet, or a SQLite store from before versioning).
    static func version(_ db: any MetadataConnection) throws(FSError) -> Int64 {
        switch db.engine {
        case .sqlite:
            return try db.firstInt("PRAGMA user_version") ?? 0
        case .postgres:
            guard try db.firstInt("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'schema_version' AND schemaname = current_schema()") ?? 0 > 0 else { return 0 }
            return try db.firstInt("SELECT MAX(version) FROM schema_version") ?? 0
        }
    }

    /// Records `version` (in the migration's transaction).
    static func setVersion(_ db: any MetadataConnection, _ version: Int64) throws(FSError) {
        switch db.engine {
        case .sqlite:
            try db.execute("PRAGMA user_version = \(version)")
        case .postgres:
            try db.run("DELETE FROM schema_version")
            try db.run("INSERT INTO schema_version(version) VALUES(?)", [.int(version)])
        }
    }

    static func migrate(_ db: any MetadataConnection, to version: Int64) throws(FSError) {
        switch (version, db.engine) {
        case (1, .sqlite): try db.execute(sqliteTables)
        case (1, .postgres): try db.execute(postgresTables)
        case (2, .sqlite): try addColumnsForLinksAndSpecialFiles(sqlite: db)
        case (2, .postgres):
            try db.execute("""
                ALTER TABLE entries ADD COLUMN IF NOT EXISTS rdev BIGINT NOT NULL DEFAULT 0;
                ALTER TABLE entries ADD COLUMN IF NOT EXISTS link_ino BIGINT NOT NULL DEFAULT 0;
                """)
        case (3, _):
            // The same SQL on both engines (SQLite reads BIGINT as INTEGER).
            try db.execute("""
                CREATE TABLE IF NOT EXISTS mount_sessions(
                  id TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, started BIGINT NOT NULL, heartbeat BIGINT NOT NULL)
                """)
        case (4, _): try addSessionOwners(db)
        case (5, .sqlite): break // one mount per SQLite store: no one to tell
        case (5, .postgres): try installChangeNotifications(db)
        default:
            throw FSError(.io, "no migration to schema version \(version)")
        }
        if version == 2 {
            try db.execute("""
                CREATE INDEX IF NOT EXISTS entries_links ON entries(link_ino) WHERE kind = 13;
                CREATE INDEX IF NOT EXISTS entries_subdirectories ON entries(parent) WHERE kind = 3;
                """)
        }
    }

    /// Version 5 for PostgreSQL: every change of a row of `entries` sends a NOTIFY, in the
    /// changing transaction (so it is delivered at its commit, and never for a rollback), on the
    /// channel `fdfs_` + md5 of the schema. Payloads are `PID e PARENT NAME` (a name appeared
    /// or went away in directory PARENT) and `PID i INO` (the row of INO changed: attributes,
    /// size, a commit's new file ID), PID being the sending connection's backend, so that a
    /// mount skips its own (``NamespaceListener``). Detached rows (parent 0) name nothing.
    static func installChangeNotifications(_ db: any MetadataConnection) throws(FSError) {
        // One statement with `;` inside: run as it is (execute would split it).
        try db.run("""
            CREATE OR REPLACE FUNCTION fdfs_entries_changed() RETURNS trigger LANGUAGE plpgsql AS $fdfs$
            DECLARE
              channel text := 'fdfs_' || md5(TG_TABLE_SCHEMA);
              sender text := pg_backend_pid()::text;
            BEGIN
              IF TG_OP <> 'INSERT' AND OLD.parent <> 0
                 AND (TG_OP = 'DELETE' OR OLD.parent <> NEW.parent OR OLD.name <> NEW.name) THEN
                PERFORM pg_notify(channel, sender || ' e ' || OLD.parent || ' ' || OLD.name);
              END IF;
              IF TG_OP <> 'DELETE' AND NEW.parent <> 0
                 AND (TG_OP = 'INSERT' OR OLD.parent <> NEW.parent OR OLD.name <> NEW.name) THEN
                PERFORM pg_notify(channel, sender || ' e ' || NEW.parent || ' ' || NEW.name);
              END IF;
              IF TG_OP = 'UPDATE' THEN
                PERFORM pg_notify(channel, sender || ' i ' || OLD.ino);
              END IF;
              RETURN NULL;
            END
            $fdfs$
            """)
        try db.execute("""
            DROP TRIGGER IF EXISTS fdfs_entries_changed ON entries;
            CREATE TRIGGER fdfs_entries_changed AFTER INSERT OR UPDATE OR DELETE ON entries
              FOR EACH ROW EXECUTE FUNCTION fdfs_entries_changed()
            """)
    }

    /// Version 1: names, upload journal, deletions, streams, due metadata, groups, settings.
    static let sqliteTables = """
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
        """

    /// Version 1 for PostgreSQL: the same tables with 64-bit integers, inode numbers from an
    /// identity that starts after the root's, and names compared bytewise as in SQLite.
    static let postgresTables = """
        CREATE TABLE IF NOT EXISTS entries(
          ino BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 2) PRIMARY KEY, parent BIGINT NOT NULL,
          name TEXT COLLATE "C" NOT NULL, kind BIGINT NOT NULL,
          mode BIGINT NOT NULL, uid BIGINT NOT NULL, gid BIGINT NOT NULL,
          atime BIGINT NOT NULL, mtime BIGINT NOT NULL, ctime BIGINT NOT NULL,
          size BIGINT NOT NULL DEFAULT 0, file_id TEXT COLLATE "C", target TEXT, state BIGINT NOT NULL DEFAULT 0,
          UNIQUE(parent, name));
        CREATE INDEX IF NOT EXISTS entries_file_id ON entries(file_id);
        CREATE TABLE IF NOT EXISTS pending(
          id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, ino BIGINT NOT NULL, spool TEXT NOT NULL, size BIGINT NOT NULL,
          old_file_id TEXT, new_file_id TEXT, in_place BIGINT NOT NULL DEFAULT 0, started BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS deletions(file_id TEXT COLLATE "C" PRIMARY KEY, since BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS streams(file_id TEXT COLLATE "C" PRIMARY KEY, ino BIGINT NOT NULL, since BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS metadata_due(file_id TEXT COLLATE "C" PRIMARY KEY, ino BIGINT NOT NULL, marked BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS groups(name TEXT COLLATE "C" PRIMARY KEY, store_paths BIGINT NOT NULL, subdirs BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT);
        """

    /// Version 4: every journal row names the session that owns it (`''`: SQLite's one implicit
    /// session, and rows written before version 4), so that a dead session's rows can be taken
    /// over by another mount: pending uploads, streams and due metadata writes (`session`, never
    /// NULL), provisional and detached entries (`entries.session`, NULL on every other row); and
    /// the cluster files each session has open (`open_files`, written on PostgreSQL only).
    static func addSessionOwners(_ db: any MetadataConnection) throws(FSError) {
        for table in ["pending", "streams", "metadata_due"] {
            try addColumn(db, table: table, column: "session", type: "TEXT NOT NULL DEFAULT ''")
        }
        try addColumn(db, table: "entries", column: "session", type: "TEXT")
        try db.execute("""
            CREATE INDEX IF NOT EXISTS entries_session ON entries(session) WHERE session IS NOT NULL;
            CREATE TABLE IF NOT EXISTS open_files(
              session TEXT NOT NULL, file_id TEXT NOT NULL, count BIGINT NOT NULL, PRIMARY KEY(session, file_id));
            CREATE INDEX IF NOT EXISTS open_files_file_id ON open_files(file_id);
            """)
    }

    /// Adds a column unless the table has it (SQLite has no `ADD COLUMN IF NOT EXISTS`).
    static func addColumn(_ db: any MetadataConnection, table: String, column: String, type: String) throws(FSError) {
        switch db.engine {
        case .postgres:
            try db.execute("ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS \(column) \(type)")
        case .sqlite:
            var columns: Set<String> = []
            try db.query("PRAGMA table_info(\(table))", []) { (row: SQLRow) throws(FSError) in columns.insert(row.text(1) ?? "") }
            if !columns.contains(column) { try db.execute("ALTER TABLE \(table) ADD COLUMN \(column) \(type)") }
        }
    }

    /// Version 2 for SQLite (which cannot add a column only when missing): the `rdev` and
    /// `link_ino` columns of special files and hard links, unless a store from before
    /// versioning already has them.
    static func addColumnsForLinksAndSpecialFiles(sqlite db: any MetadataConnection) throws(FSError) {
        var columns: Set<String> = []
        try db.query("PRAGMA table_info(entries)", []) { (row: SQLRow) throws(FSError) in columns.insert(row.text(1) ?? "") }
        if !columns.contains("rdev") { try db.execute("ALTER TABLE entries ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0") }
        if !columns.contains("link_ino") { try db.execute("ALTER TABLE entries ADD COLUMN link_ino INTEGER NOT NULL DEFAULT 0") }
    }
}
