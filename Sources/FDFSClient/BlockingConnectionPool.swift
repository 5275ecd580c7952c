import FDFSProtocol
import NIOCore

/// Idle ``BlockingConnection``s per storage, reused across downloads; the blocking
/// counterpart of ``ConnectionPool`` (same settings: idle age, ACTIVE_TEST, idle count).
/// A connection goes back only when its request finished cleanly; any error closes it.
final class BlockingConnectionPool: Sendable {
    private let idle: IdleConnections<BlockingConnection>
    let configuration: ClientConfiguration

    init(configuration: ClientConfiguration) {
        self.configuration = configuration
        self.idle = IdleConnections(limitPerServer: configuration.maxIdlePerEndpoint)
    }

    /// Runs `body` (blocking) with a connection to `endpoint`: an idle one that is still quiet
    /// (checked with ACTIVE_TEST if it has been idle for long), or a new one.
    func withConnection<T>(to endpoint: StorageEndpoint, _ body: (BlockingConnection) throws(FDFSClientError) -> T) throws(FDFSClientError) -> T {
        let connection = try checkout(endpoint)
        do {
            let result = try body(connection)
            checkin(connection, key: endpoint.description)
            return result
        } catch {
            if error.leavesConnectionReusable {
                checkin(connection, key: endpoint.description)
            } else {
                connection.close()
            }
            throw error
        }
    }

    /// An idle connection to `endpoint` that is still quiet, or a new one.
    func checkout(_ endpoint: StorageEndpoint) throws(FDFSClientError) -> BlockingConnection {
        while let candidate = idle.take(endpoint.description) {
            let age = candidate.idleFor
            guard age < configuration.maxIdleTime, candidate.connection.isQuiet else {
                candidate.connection.close()
                continue
            }
            if age >= configuration.activeTestAfter, !Self.activeTest(candidate.connection) {
                candidate.connection.close()
                continue
            }
            return candidate.connection
        }
        return try BlockingConnection.connect(
            host: endpoint.ip, port: endpoint.port,
            connectTimeout: configuration.connectTimeout, networkTimeout: configuration.networkTimeout)
    }

    private static func activeTest(_ connection: BlockingConnection) -> Bool {
        do {
            try connection.send(FDFSHeader(bodyLength: 0, command: .activeTest).encoded(), operation: "ACTIVE_TEST")
            return try connection.readHead(operation: "ACTIVE_TEST").bodyLength == 0
        } catch {
            return false
        }
    }

    /// Keeps `connection` (its last exchange finished cleanly) for the next request.
    func checkin(_ connection: BlockingConnection, key: String) {
        if !idle.put(connection, key) { connection.close() }
    }

    /// Sends QUIT on every idle connection and closes them.
    func shutdown() {
        for connection in idle.removeAll() {
            try? connection.send(FDFSHeader(bodyLength: 0, command: .quit).encoded(), operation: "QUIT")
            connection.close()
        }
    }
}
