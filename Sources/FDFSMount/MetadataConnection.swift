/// Which database holds the namespace.
public enum MetadataEngineKind: String, Sendable {
    /// SQLite in the state directory, one mount alone (the default).
    case sqlite
    /// PostgreSQL, shared by every mount that names the same database.
    case postgres
}

/// One connection to the database that holds the mount's namespace: the engine under
/// ``MappingStore``. The store serialises every use behind its lock, so implementations need
/// not be thread-safe. Every call is synchronous: a PostgreSQL connection blocks its caller
/// until the server answered (see ``PostgresMetadataConnection``).
///
/// Statements are written once, in the SQL that SQLite and PostgreSQL both accept (`?`
/// placeholders, `ON CONFLICT … DO UPDATE`, `RETURNING`); what differs (table definitions,
/// transactions, schema versions) lives in ``MetadataSchema`` and in the implementations.
protocol MetadataConnection: AnyObject {
    var engine: MetadataEngineKind { get }
    /// Runs one or more statements without values (schema changes).
    func execute(_ sql: String) throws(FSError)
    /// Runs a statement with bound values; `row` is called for each result row.
    func query(_ sql: String, _ values: [SQLValue], row: (SQLRow) throws(FSError) -> Void) throws(FSError)
    func begin() throws(FSError)
    func commit() throws(FSError)
    func rollback() throws(FSError)
}

extension MetadataConnection {
    func run(_ sql: String, _ values: [SQLValue] = []) throws(FSError) {
        try query(sql, values) { _ throws(FSError) in }
    }

    func query(_ sql: String, row: (SQLRow) throws(FSError) -> Void) throws(FSError) {
        try query(sql, [], row: row)
    }

    func firstInt(_ sql: String, _ values: [SQLValue] = []) throws(FSError) -> Int64? {
        var result: Int64?
        try query(sql, values) { (row: SQLRow) throws(FSError) in if result == nil { result = row.int(0) } }
        return result
    }

    /// Runs `body` in one transaction (rolled back when it throws).
    func transaction<T>(_ body: () throws(FSError) -> T) throws(FSError) -> T {
        try begin()
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            try? rollback()
            throw error
        }
    }
}

/// A value bound to a statement.
enum SQLValue: Sendable {
    case null
    case int(Int64)
    case text(String)

    static func int(_ v: Int) -> SQLValue { .int(Int64(v)) }
    static func int(_ v: UInt32) -> SQLValue { .int(Int64(v)) }
    static func optional(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
}

/// One result row: read in place from a SQLite statement, or values a PostgreSQL reply carried.
struct SQLRow {
    enum Storage {
        case sqlite(OpaquePointer)
        case values([SQLValue])
    }

    let storage: Storage

    func int(_ column: Int32) -> Int64 {
        switch storage {
        case let .sqlite(statement): return SQLiteDatabase.int(statement, column)
        case let .values(values):
            guard Int(column) < values.count else { return 0 }
            switch values[Int(column)] {
            case let .int(v): return v
            case let .text(s): return Int64(s) ?? 0
            case .null: return 0
            }
        }
    }

    func isNull(_ column: Int32) -> Bool {
        switch storage {
        case let .sqlite(statement): return SQLiteDatabase.isNull(statement, column)
        case let .values(values):
            guard Int(column) < values.count, case .null = values[Int(column)] else { return Int(column) >= values.count }
            return true
        }
    }

    func text(_ column: Int32) -> String? {
        switch storage {
        case let .sqlite(statement): return SQLiteDatabase.text(statement, column)
        case let .values(values):
            guard Int(column) < values.count else { return nil }
            switch values[Int(column)] {
            case let .text(s): return s
            case let .int(v): return String(v)
            case .null: return nil
            }
        }
    }
}
