import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL engine of ``MappingStore``: one connection through postgres-nio, on an event
/// loop of its own.
///
/// The sync bridge: the store's API is synchronous (libfuse threads answer LOOKUP and GETATTR
/// on the spot), so each call sends its query and blocks the calling thread on the reply's
/// future until the event loop completes it, for at most ``timeout``. The future never needs
/// Swift's cooperative pool, so a blocked caller cannot starve the reply. Async code reaches
/// the store through ``MappingStore/async(_:)``, which moves the wait off the pool.
///
/// An unreachable server: a statement that gets no answer within ``timeout`` fails with EIO
/// and its connection is dropped; while the server stays away, the next statements fail at
/// once (one connection attempt per ``retryInterval``), and the first statement after it is
/// back opens a new connection. The outage is logged once when it starts and once when it
/// ends. A transaction whose connection went away fails as a whole (nothing of it runs on
/// the new connection).
final class PostgresMetadataConnection: MetadataConnection {
    var engine: MetadataEngineKind { .postgres }
    let location: PostgresLocation
    /// The longest a statement (or a connection attempt) may take before it fails with EIO.
    let timeout: TimeAmount
    private var connection: PostgresConnection?
    /// Statements with `?` placeholders rewritten to PostgreSQL's `$n`.
    private var translated: [String: String] = [:]
    private let logger: Logger
    /// Set while a transaction is open: a lost connection must not be replaced mid-way.
    private var inTransaction = false
    /// Whether the server answers, shared by the connections of one store (logged once).
    let outage: MetadataOutage
    private var nextAttempt: ContinuousClock.Instant?
    static let retryInterval: Duration = .milliseconds(500)

    /// The event loop every metadata connection of the process uses: nothing else runs on it,
    /// so no caller can be the thread its replies arrive on.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private static let nextID = Atomic<Int>(1)
    /// Statements sent to PostgreSQL by every connection of the process (one round trip each).
    static let roundTrips = Atomic<Int>(0)
    /// `FDFS_META_TRACE=1` logs every statement on stderr (for counting round trips per operation).
    private static let trace = getenv("FDFS_META_TRACE").map { String(cString: $0) == "1" } ?? false

    /// The backend PIDs of the store's connections (the senders of the NOTIFYs its changes
    /// cause), shared by the connections of one store; this one's is ``backendPID``.
    let backends: BackendIDs
    private var backendPID: Int64 = 0

    init(location: PostgresLocation, timeout: Double = 5, outage: MetadataOutage = MetadataOutage(), backends: BackendIDs = BackendIDs(),
         logger: Logger = Logger(label: "fdfs.meta.postgres")) throws(FSError) {
        self.location = location
        self.logger = logger
        self.outage = outage
        self.backends = backends
        self.timeout = .nanoseconds(Int64(max(timeout, 0.001) * 1e9))
        let connection = try Self.connect(location, timeout: self.timeout, logger: logger)
        self.connection = connection
        try noteBackend(of: connection)
    }

    /// Records the backend PID of a new connection (the old one's is forgotten).
    private func noteBackend(of connection: PostgresConnection) throws(FSError) {
        let answer = try Self.wait(connection.query("SELECT pg_backend_pid()::bigint", logger: logger), timeout: timeout, "asking for the backend PID")
        let pid = answer.rows.first.flatMap { try? $0.decode(Int64.self) } ?? 0
        backends.replace(backendPID, with: pid)
        backendPID = pid
    }

    deinit {
        backends.replace(backendPID, with: 0)
        _ = try? connection?.close().wait()
    }

    static func connect(_ location: PostgresLocation, timeout: TimeAmount, logger: Logger) throws(FSError) -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        configuration.options.connectTimeout = timeout
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let connection = try wait(PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger),
                                  timeout: timeout, "connecting to \(location)")
        if let schema = location.schema {
            do throws(FSError) {
                try createSchema(schema, on: connection, timeout: timeout, logger: logger)
                _ = try wait(connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \(schema)"), logger: logger), timeout: timeout, "selecting schema \(schema)")
            } catch {
                _ = try? connection.close().wait()
                throw error
            }
        }
        return connection
    }

    /// Creates `schema` unless it exists. `CREATE SCHEMA IF NOT EXISTS` is not safe against
    /// itself: two mounts starting at once on a new schema both create it, and one fails with
    /// a unique violation (23505) although the schema is there. That failure counts as done.
    static func createSchema(_ schema: String, on connection: PostgresConnection, timeout: TimeAmount, logger: Logger) throws(FSError) {
        do {
            _ = try wait(connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger), timeout: timeout, "creating schema \(schema)")
        } catch {
            let query: PostgresQuery = "SELECT count(*)::bigint FROM pg_namespace WHERE nspname = \(schema)"
            let found = try wait(connection.query(query, logger: logger), timeout: timeout, "looking for schema \(schema)")
            guard found.rows.first.flatMap({ try? $0.decode(Int64.self) }) == 1 else { throw error }
        }
    }

    /// The server did not answer within the timeout.
    struct TimedOut: Error, CustomStringConvertible {
        let after: TimeAmount
        var description: String { "no answer within \(Double(after.nanoseconds) / 1e9) s" }
    }

    /// Blocks the calling thread until `future` completes or `timeout` passes (the sync bridge).
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, timeout: TimeAmount, _ what: @autoclosure () -> String) throws(FSError) -> T {
        let promise = future.eventLoop.makePromise(of: T.self)
        let timer = future.eventLoop.scheduleTask(in: timeout) { promise.fail(TimedOut(after: timeout)) }
        future.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        do {
            return try promise.futureResult.wait()
        } catch {
            // An error the server answered with is EIO (or a conflict the caller retries); no
            // answer at all (timeout, refused or closed socket) is the engine being away.
            guard (error as? PSQLError)?.serverInfo != nil else {
                throw FSError(.metadataUnreachable, "postgres: \(what()): \(describe(error))")
            }
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

    /// The connection to use: a closed or dropped one is opened again (at most once per
    /// ``retryInterval`` while the server stays away), except inside a transaction.
    private func live() throws(FSError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        if inTransaction { throw FSError(.metadataUnreachable, "postgres: the connection to \(location) was lost during a transaction") }
        let now = ContinuousClock.now
        if let nextAttempt, now < nextAttempt { throw FSError(.metadataUnreachable, "postgres: no connection to \(location) (retrying)") }
        do throws(FSError) {
            let fresh = try Self.connect(location, timeout: timeout, logger: logger)
            try noteBackend(of: fresh)
            connection = fresh
            nextAttempt = nil
            return fresh
        } catch {
            nextAttempt = ContinuousClock.now + Self.retryInterval
            unreachable(error)
            throw error
        }
    }

    /// Runs one statement on the live connection; a failure that is not the server's answer
    /// (timeout, closed socket) drops the connection.
    private func send(_ statement: PostgresQuery, _ what: @autoclosure () -> String) throws(FSError) -> PostgresQueryResult {
        let connection = try live()
        Self.roundTrips.add(1, ordering: .relaxed)
        if Self.trace { Self.traceLine("fdfs-meta: \(statement.sql.prefix(160))\n") }
        do throws(FSError) {
            let result = try Self.wait(connection.query(statement, logger: logger), timeout: timeout, what())
            reachable()
            return result
        } catch {
            // A server error (constraint, syntax) came in an answer: the connection is fine.
            guard error.code == .metadataUnreachable || connection.isClosed else { throw error }
            self.connection = nil
            // The callback holds the connection until it is closed (postgres-nio requires it).
            let closing: EventLoopFuture<Void> = connection.close()
            closing.whenComplete { _ in _ = connection }
            unreachable(error)
            throw FSError(.metadataUnreachable, error.message)
        }
    }

    private static func traceLine(_ line: String) {
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    private func unreachable(_ error: FSError) {
        guard outage.begin() else { return }
        logger.error("metadata engine unreachable: \(location) (\(error.message)); operations that need it fail with EIO until it is back")
    }

    private func reachable() {
        guard let away = outage.end() else { return }
        logger.notice("metadata engine reachable again: \(location), after \(away)")
    }

    /// Runs each `;`-separated statement in turn (postgres-nio sends one statement per query;
    /// the schema's statements hold no `;` inside literals).
    func execute(_ sql: String) throws(FSError) {
        for statement in Self.statements(sql) {
            _ = try send(PostgresQuery(unsafeSQL: statement), String(statement.prefix(80)))
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
        let result = try send(PostgresQuery(unsafeSQL: placeholders(sql), binds: bindings), String(sql.prefix(80)))
        for reply in result.rows {
            try row(SQLRow(storage: .values(reply.map(Self.value))))
        }
    }

    func begin() throws(FSError) {
        try execute("BEGIN")
        inTransaction = true
    }

    func commit() throws(FSError) {
        defer { inTransaction = false }
        try execute("COMMIT")
    }

    func rollback() throws(FSError) {
        defer { inTransaction = false }
        // A lost connection rolled the transaction back with it.
        guard let connection, !connection.isClosed else { return }
        try execute("ROLLBACK")
    }

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

/// Whether the metadata engine answers, shared by the connections of one store, so that an
/// outage is logged once when it starts and once when it ends.
final class MetadataOutage: Sendable {
    private let since = Mutex<ContinuousClock.Instant?>(nil)

    init() {}

    /// True for the first failure of an outage.
    func begin() -> Bool {
        since.withLock { since in
            guard since == nil else { return false }
            since = .now
            return true
        }
    }

    /// How long the outage lasted, for the first answer after one (nil otherwise).
    func end() -> Duration? {
        since.withLock { since in
            guard let start = since else { return nil }
            since = nil
            return ContinuousClock.now - start
        }
    }
}
