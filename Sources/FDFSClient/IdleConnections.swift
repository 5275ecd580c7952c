import NIOCore
import Synchronization

/// The idle connections of a pool, per server (`host:port`), newest last: the bookkeeping
/// ``ConnectionPool`` and ``BlockingConnectionPool`` share (they differ in how a connection is
/// checked, opened and closed, which stays with them).
final class IdleConnections<Connection: Sendable>: Sendable {
    private struct Idle {
        var connection: Connection
        var since: NIODeadline
    }

    private let idle = Mutex<[String: [Idle]]>([:])
    /// Idle connections kept per server at most.
    let limitPerServer: Int

    init(limitPerServer: Int) {
        self.limitPerServer = limitPerServer
    }

    /// The most recently returned idle connection to `key`, and how long it has been idle.
    func take(_ key: String) -> (connection: Connection, idleFor: TimeAmount)? {
        guard let found = idle.withLock({ $0[key]?.popLast() }) else { return nil }
        return (found.connection, .now() - found.since)
    }

    /// Keeps `connection` for reuse; false (the caller closes it) when `key` has enough already.
    func put(_ connection: Connection, _ key: String) -> Bool {
        idle.withLock { pool in
            guard pool[key, default: []].count < limitPerServer else { return false }
            pool[key, default: []].append(Idle(connection: connection, since: .now()))
            return true
        }
    }

    /// Every idle connection, forgotten here (the caller ends them).
    func removeAll() -> [Connection] {
        idle.withLock { pool in
            defer { pool.removeAll() }
            return pool.values.flatMap { $0.map(\.connection) }
        }
    }
}
