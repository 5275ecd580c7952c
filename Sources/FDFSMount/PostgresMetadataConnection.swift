import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The PostgreSQL engine of ``MappingStore``: one connection through postgres-nio, on an event
/// loop of its own.
///
/// The sync bridge: the store's API is synchronous (libfuse threads answer LOOKUP and GETATTR
/// on the spot), so each call sends its query and blocks the calling thread on the reply's
/// future until the event loop completes it. The future never needs Swift's cooperative pool,
/// so a blocked caller cannot starve the reply. Callers on libfuse threads are what this is
/// for; callers in async code (the mount's Tasks) block a pool thread for one round trip,
/// which a later step removes by giving those paths an async store API.
final class PostgresMetadataConnection: MetadataConnection {
    var engine: MetadataEngineKind { .postgres }
    let location: PostgresLocation
    private var connection: PostgresConnection
    /// Statements with `?` placeholders rewritten to PostgreSQL's `$n`.
    private var translated: [String: String] = [:]
    private let logger: Logger

    /// The event loop every metadata connection of the process uses: nothing else runs on it,
    /// so no caller can be the thread its replies arrive on.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private static let nextID = Atomic<Int>(1)

    /// This connection's backend PID (the sender of the NOTIFYs its changes cause).
    let backend = BackendID()

    init(location: PostgresLocation, logger: Logger = Logger(label: "fdfs.meta.postgres")) throws(FSError) {
        self.location = location
        self.logger = logger
        connection = try Self.connect(location, logger: logger)
        try noteBackend()
    }

    private func noteBackend() throws(FSError) {
        let pid = try Self.wait(connection.query("SELECT pg_backend_pid()::bigint", logger: logger), "asking for the backend PID")
        backend.value.store(pid.rows.first.flatMap { try? $0.decode(Int64.self) } ?? 0, ordering: .relaxed)
    }

    deinit {
        _ = try? connection.close().wait()
    }

    static func connect(_ location: PostgresLocation, logger: Logger) throws(FSError) -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let connection = try wait(PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger),
                                  "connecting to \(location)")
        if let schema = location.schema {
            do throws(FSError) {
                for statement in ["CREATE SCHEMA IF NOT EXISTS \(schema)", "SET search_path TO \(schema)"] {
                    _ = try wait(connection.query(PostgresQuery(unsafeSQL: statement), logger: logger), "selecting schema \(schema)")
                }
            } catch {
                _ = try? connection.close().wait()
                throw error
            }
        }
        return connection
    }

    /// Blocks the calling thread until `future` completes (the sync bridge).
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ what: @autoclosure () -> String) throws(FSError) -> T {
        do {
            return try future.wait()
        } catch {
            throw FSError(isConflict(error) ? .conflict : .io, "postgres: \(what()): \(describe(error))")
        }
    }

    /// A statement that lost to another mount's transaction: a unique name taken meanwhile
    /// (23505), a deadlock broken (40P01), a serialization failure (40001). Nothing of the
    /// transaction stays; the operation may be checked again and retried.
    static func isConflict(_ error: any Error) -> Bool {
        guard let state = (error as? PSQLError)?.serverInfo?[.sqlState] else { return false }
        return ["23505", "40P01", "40001"].contains(state)
    }

    /// The server's message for a PSQLError (its description hides everything).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo, let message = info[.message] {
            return "\(message) (\(info[.sqlState] ?? "?"))"
        }
        return "\(error.code)"
    }

    /// A closed connection (the server restarted, the network dropped) is opened again for the
    /// next statement; the statement that found it closed fails.
    private func live() throws(FSError) -> PostgresConnection {
        if connection.isClosed {
            logger.warning("the metadata connection to \(location) was closed; reconnecting")
            connection = try Self.connect(location, logger: logger)
            try noteBackend()
        }
        return connection
    }

    /// Runs each `;`-separated statement in turn (postgres-nio sends one statement per query;
    /// the schema's statements hold no `;` inside literals).
    func execute(_ sql: String) throws(FSError) {
        for statement in Self.statements(sql) {
            _ = try Self.wait(live().query(PostgresQuery(unsafeSQL: statement), logger: logger), String(statement.prefix(80)))
        }
    }

    static func statements(_ sql: String) -> [String] {
        sql.split(separator: ";").compactMap { part in
            let statement = part.drop(while: \.isWhitespace)
            return statement.allSatisfy(\.isWhitespace) ? nil : String(statement)
        }
    }

    func query(_ sql: String, _ values: [SQLValue], row: (SQLRow) throws(FSError) -> Void) throws(FSError) {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case let .int(v): bindings.append(v)
            case let .text(s): bindings.append(s)
            }
        }
        let statement = PostgresQuery(unsafeSQL: placeholders(sql), binds: bindings)
        let result = try Self.wait(live().query(statement, logger: logger), String(sql.prefix(80)))
        for reply in result.rows {
            try row(SQLRow(storage: .values(reply.map(Self.value))))
        }
    }

    func begin() throws(FSError) { try execute("BEGIN") }
    func commit() throws(FSError) { try execute("COMMIT") }
    func rollback() throws(FSError) { try execute("ROLLBACK") }

    /// A cell as a ``SQLValue``: integers and text are all the schema has.
    static func value(_ cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8:
            return (try? cell.decode(Int64.self)).map { .int($0) } ?? .null
        default:
            return (try? cell.decode(String.self)).map { .text($0) } ?? .null
        }
    }

    /// `?` placeholders (outside quotes) numbered as `$1`, `$2`, ….
    func placeholders(_ sql: String) -> String {
        if let known = translated[sql] { return known }
        var result = ""
        var number = 0
        var quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?", !quoted {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        translated[sql] = result
        return result
    }
}
