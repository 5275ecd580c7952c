import FDFSProtocol
import NIOCore
import NIOPosix

/// Idle connections per server, reused across requests.
///
/// A connection is lent to one request at a time by ``withConnection(to:_:)``. It goes back to
/// the pool only when the request finished cleanly; any error closes it.
public final class ConnectionPool: Sendable {
    private let idle: IdleConnections<FDFSConnection>
    let configuration: ClientConfiguration
    let group: any EventLoopGroup

    public init(configuration: ClientConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.group = group
        self.idle = IdleConnections(limitPerServer: configuration.maxIdlePerEndpoint)
    }

    /// Runs `body` with a connection to `endpoint`: an idle one (checked with ACTIVE_TEST if
    /// it has been idle for long) or a new one.
    public func withConnection<T: Sendable>(
        to endpoint: StorageEndpoint, _ body: (FDFSConnection) async throws(FDFSClientError) -> T
    ) async throws(FDFSClientError) -> T {
        let connection = try await checkout(endpoint)
        do {
            let result = try await body(connection)
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

    private func checkout(_ endpoint: StorageEndpoint) async throws(FDFSClientError) -> FDFSConnection {
        while let candidate = idle.take(endpoint.description) {
            let age = candidate.idleFor
            guard candidate.connection.isActive, age < configuration.maxIdleTime else {
                await candidate.connection.quit()
                continue
            }
            if age >= configuration.activeTestAfter, await !candidate.connection.activeTest() {
                candidate.connection.close()
                continue
            }
            return candidate.connection
        }
        return try await FDFSConnection.connect(
            host: endpoint.ip, port: endpoint.port, group: group,
            connectTimeout: configuration.connectTimeout, networkTimeout: configuration.networkTimeout)
    }

    private func checkin(_ connection: FDFSConnection, key: String) {
        guard connection.isActive else { return }
        if !idle.put(connection, key) { connection.close() }
    }

    /// Sends QUIT on every idle connection and forgets them.
    public func shutdown() async {
        for connection in idle.removeAll() { await connection.quit() }
    }
}
