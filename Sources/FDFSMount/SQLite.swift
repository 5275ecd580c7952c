import CSQLite

/// A thin wrapper over one SQLite connection: the default engine of ``MappingStore``
/// (`STATE_DIR/mapping.db`, WAL mode). Not thread-safe by itself: the store owns one and
/// serialises every use behind a lock.
final class SQLiteDatabase: MetadataConnection {
    var engine: MetadataEngineKind { .sqlite }
    private(set) var handle: OpaquePointer?
    let path: String
    private var statements: [String: OpaquePointer] = [:]

    init(path: String, readOnly: Bool = false) throws(FSError) {
        self.path = path
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            if let db { sqlite3_close(db) }
            throw FSError(.io, "cannot open mapping store \(path): \(message)")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        if let handle { sqlite3_close_v2(handle) }
    }

    var errorMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed" }

    func execute(_ sql: String) throws(FSError) {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "error \(rc)"
            sqlite3_free(error)
            throw FSError(.io, "sqlite: \(message) in \(sql.prefix(80))")
        }
    }

    /// Runs a statement (cached by its text) with bound values; `row` is called per result row.
    func query(_ sql: String, _ values: [SQLValue], row: (SQLRow) throws(FSError) -> Void) throws(FSError) {
        let statement = try prepare(sql)
        defer { sqlite3_reset(statement); sqlite3_clear_bindings(statement) }
        for (index, value) in values.enumerated() {
            let position = Int32(index + 1)
            switch value {
            case .null: sqlite3_bind_null(statement, position)
            case let .int(v): sqlite3_bind_int64(statement, position, v)
            case let .text(s): fdfs_sqlite3_bind_text(statement, position, s, -1)
            }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_ROW {
                try row(SQLRow(storage: .sqlite(statement)))
            } else if rc == SQLITE_DONE {
                return
            } else {
                throw FSError(.io, "sqlite: \(errorMessage) (\(rc)) in \(sql.prefix(80))")
            }
        }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Transactions take the write lock at once (no deadlock between two readers upgrading).
    func begin() throws(FSError) { try execute("BEGIN IMMEDIATE") }
    func commit() throws(FSError) { try execute("COMMIT") }
    func rollback() throws(FSError) { try execute("ROLLBACK") }

    private func prepare(_ sql: String) throws(FSError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw FSError(.io, "sqlite: cannot prepare \(sql.prefix(80)): \(errorMessage)")
        }
        statements[sql] = statement
        return statement
    }
}

extension SQLiteDatabase {
    static func int(_ statement: OpaquePointer, _ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    static func isNull(_ statement: OpaquePointer, _ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    static func text(_ statement: OpaquePointer, _ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(statement, column) else { return nil }
        return String(cString: pointer)
    }
}
