import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// What another mount changed, for the kernel (and any cache) of this one to forget.
public enum Invalidation: Sendable, Equatable {
    /// A name appeared in or went away from directory `parent` (the directory's attributes
    /// changed with it).
    case entry(parent: UInt64, name: String)
    /// The attributes or the content of inode `ino` changed (a commit, a `chmod`, …).
    case inode(UInt64)

    /// Parses a payload of the `entries` trigger (``MetadataSchema/installChangeNotifications(_:)``):
    /// `PID e PARENT NAME` or `PID i INO`. Returns the sender's backend PID and the change.
    static func parse(_ payload: String) -> (sender: Int64, change: Invalidation)? {
        let parts = payload.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, let sender = Int64(parts[0]), let number = UInt64(parts[2]) else { return nil }
        switch parts[1] {
        case "e" where parts.count == 4: return (sender, .entry(parent: number, name: String(parts[3])))
        case "i": return (sender, .inode(number))
        default: return nil
        }
    }
}

/// The backend PIDs of the store's own connections, so that the listener skips the changes
/// this mount made itself.
final class BackendIDs: Sendable {
    private let pids = Mutex<Set<Int64>>([])

    /// Whether `pid` is one of this store's connections.
    func contains(_ pid: Int64) -> Bool { pids.withLock { $0.contains(pid) } }

    /// A connection was opened (`new`), reopened (`old` → `new`) or closed (`new` = 0).
    func replace(_ old: Int64, with new: Int64) {
        pids.withLock { pids in
            pids.remove(old)
            if new != 0 { pids.insert(new) }
        }
    }
}

/// LISTENs on the namespace's channel with a connection of its own and hands every change
/// another mount commits to `deliver`. The connection is reopened (once a second) when it
/// drops; what was committed while it was down is not replayed (the kernel then keeps its
/// cache until `attr_timeout=`, as without this listener), which a warning says.
final class NamespaceListener: Sendable {
    let location: PostgresLocation
    let own: BackendIDs
    let logger: Logger
    let deliver: @Sendable (Invalidation) -> Void
    private let current = Mutex<(connection: PostgresConnection?, stopped: Bool)>((nil, false))

    init(location: PostgresLocation, own: BackendIDs, logger: Logger, deliver: @escaping @Sendable (Invalidation) -> Void) {
        self.location = location
        self.own = own
        self.logger = logger
        self.deliver = deliver
    }

    /// Listens until ``stop()``.
    func start() {
        Task { [self] in
            var failures = 0
            while !current.withLock({ $0.stopped }) {
                do {
                    let connection = try await listen()
                    if failures > 0 { logger.info("listening for changes of other mounts again (changes made meanwhile show after attr_timeout)") }
                    failures = 0
                    try? await connection.closeFuture.get()
                } catch {
                    if failures == 0 { logger.warning("cannot listen for changes of other mounts: \(PostgresMetadataConnection.describe(error)); retrying every second") }
                    failures += 1
                }
                if current.withLock({ $0.stopped }) { break }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Opens the connection, registers the handler and sends LISTEN.
    private func listen() async throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: .disable)
        let connection = try await PostgresConnection.connect(on: PostgresMetadataConnection.group.next(), configuration: configuration,
                                                              id: 0, logger: logger)
        do {
            if let schema = location.schema {
                _ = try await connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \(schema)"), logger: logger)
            }
            var channel = ""
            for try await name in try await connection.query("SELECT 'fdfs_' || md5(current_schema())", logger: logger).decode(String.self) {
                channel = name
            }
            let own = self.own, deliver = self.deliver
            connection.addListener(channel: channel) { _, message in
                guard let (sender, change) = Invalidation.parse(message.payload) else { return }
                if own.contains(sender) { return }
                deliver(change)
            }
            _ = try await connection.query(PostgresQuery(unsafeSQL: "LISTEN \"\(channel)\""), logger: logger)
            let stopped = current.withLock { state -> Bool in
                if !state.stopped { state.connection = connection }
                return state.stopped
            }
            if stopped { try? await connection.close() }
            return connection
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Stops listening and closes the connection.
    func stop() {
        let connection = current.withLock { state -> PostgresConnection? in
            state.stopped = true
            defer { state.connection = nil }
            return state.connection
        }
        let closing: EventLoopFuture<Void>? = connection?.close()
        _ = closing
    }
}
