import FDFSProtocol
import NIOCore

/// Settings of a client, normally read from FastDFS's `client.conf`.
public struct ClientConfiguration: Sendable {
    /// Trackers to ask, in order of preference (requests are spread over them).
    public var trackers: [ServerAddress]
    /// `connect_timeout`, seconds in client.conf.
    public var connectTimeout: TimeAmount
    /// `network_timeout`: longest wait for any byte of an answer.
    public var networkTimeout: TimeAmount
    /// Idle connections older than this are closed instead of reused
    /// (`connection_pool_max_idle_time`).
    public var maxIdleTime: TimeAmount
    /// Idle connections older than this are checked with ACTIVE_TEST before reuse.
    public var activeTestAfter: TimeAmount
    /// Most idle connections kept per server.
    public var maxIdlePerEndpoint: Int
    /// How long the tracker's answer to a store query is reused for further uploads to the
    /// same group. Zero (the default, and what FastDFS's own clients do) asks for every
    /// upload; a failed upload always forgets the answer.
    public var storeTargetLifetime: TimeAmount = .zero

    public init(
        trackers: [ServerAddress], connectTimeout: TimeAmount = .seconds(10), networkTimeout: TimeAmount = .seconds(30),
        maxIdleTime: TimeAmount = .seconds(3600), activeTestAfter: TimeAmount = .seconds(20), maxIdlePerEndpoint: Int = 16
    ) {
        self.trackers = trackers
        self.connectTimeout = connectTimeout
        self.networkTimeout = networkTimeout
        self.maxIdleTime = maxIdleTime
        self.activeTestAfter = activeTestAfter
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
    }

    /// Reads `tracker_server` (repeated), `connect_timeout`, `network_timeout` and
    /// `connection_pool_max_idle_time` from a parsed client.conf.
    public init(config: FDFSConfig) throws(FDFSProtocolError) {
        var trackers: [ServerAddress] = []
        for entry in config.entries where entry.key == "tracker_server" {
            do {
                trackers.append(try ServerAddress(parsing: entry.value, defaultPort: 22122))
            } catch {
                throw config.bad(entry, "a tracker address HOST[:PORT]")
            }
        }
        guard !trackers.isEmpty else {
            throw FDFSProtocolError(.invalidConfig, "\(config.entries.first?.file ?? "client.conf"): no tracker_server configured")
        }
        self.init(
            trackers: trackers,
            connectTimeout: .seconds(Int64(try config.int("connect_timeout", default: 10))),
            networkTimeout: .seconds(Int64(try config.int("network_timeout", default: 30))),
            maxIdleTime: .seconds(Int64(try config.int("connection_pool_max_idle_time", default: 3600)))
        )
    }

    /// Reads a client.conf file.
    public static func load(path: String) throws(FDFSProtocolError) -> ClientConfiguration {
        try ClientConfiguration(config: FDFSConfig.load(path: path))
    }
}
