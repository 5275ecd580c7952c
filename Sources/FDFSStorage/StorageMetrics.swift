import CoreMetrics
import FDFSMetrics
import Synchronization

/// The storage's metrics (swift-metrics, in a Prometheus registry of its own): client
/// operations, bytes in and out, connections, binlog records, and replication lag per peer.
public final class StorageMetrics: Sendable {
    /// The registry to render.
    public let registry: MetricsRegistry
    private let factory: any MetricsFactory
    let uploads: CoreMetrics.Counter
    let downloads: CoreMetrics.Counter
    let connectionsAccepted: CoreMetrics.Counter
    let connectionsOpen: CoreMetrics.Meter
    let refusedByAllowHosts: CoreMetrics.Counter
    let refusedByLimit: CoreMetrics.Counter
    let binlogRecords: CoreMetrics.Counter
    let clientBytesIn: CoreMetrics.Counter
    let clientBytesOut: CoreMetrics.Counter
    let syncBytesIn: CoreMetrics.Counter
    let syncBytesOut: CoreMetrics.Counter
    private let operations = Mutex<[String: CoreMetrics.Counter]>([:])
    private let lag = Mutex<[String: (records: CoreMetrics.Gauge, seconds: CoreMetrics.Gauge)]>([:])

    public init() {
        let registry = MetricsRegistry()
        let factory = registry.factory
        self.registry = registry
        self.factory = factory
        uploads = Counter(label: "fdfs_storage_uploads_total", factory: factory)
        downloads = Counter(label: "fdfs_storage_downloads_total", factory: factory)
        connectionsAccepted = Counter(label: "fdfs_storage_connections_total", factory: factory)
        connectionsOpen = Meter(label: "fdfs_storage_connections_open", factory: factory)
        refusedByAllowHosts = Counter(label: "fdfs_storage_connections_refused_total", dimensions: [("reason", "allow_hosts")], factory: factory)
        refusedByLimit = Counter(label: "fdfs_storage_connections_refused_total", dimensions: [("reason", "max_connections")], factory: factory)
        binlogRecords = Counter(label: "fdfs_storage_binlog_records_total", factory: factory)
        clientBytesIn = Counter(label: "fdfs_storage_bytes_in_total", dimensions: [("kind", "client")], factory: factory)
        clientBytesOut = Counter(label: "fdfs_storage_bytes_out_total", dimensions: [("kind", "client")], factory: factory)
        syncBytesIn = Counter(label: "fdfs_storage_bytes_in_total", dimensions: [("kind", "sync")], factory: factory)
        syncBytesOut = Counter(label: "fdfs_storage_bytes_out_total", dimensions: [("kind", "sync")], factory: factory)
    }

    /// Counts one client operation (`upload`, `download`, `delete`, …) and its bytes.
    func operation(_ name: String, success: Bool, bytes: Int64?) {
        let key = name + (success ? "/ok" : "/error")
        let counter = operations.withLock { made in
            if let counter = made[key] { return counter }
            let counter = CoreMetrics.Counter(label: "fdfs_storage_operations_total", dimensions: [("operation", name), ("result", success ? "ok" : "error")], factory: factory)
            made[key] = counter
            return counter
        }
        counter.increment()
        guard success else { return }
        switch name {
        case "upload":
            uploads.increment()
            if let bytes { clientBytesIn.increment(by: bytes) }
        case "append", "modify":
            if let bytes { clientBytesIn.increment(by: bytes) }
        case "download":
            downloads.increment()
            if let bytes { clientBytesOut.increment(by: bytes) }
        default:
            break
        }
    }

    /// Sets the replication lag to `peer` (`ip:port`): binlog records it has not been sent
    /// yet, and the age in seconds of the oldest of them (0 and 0 when it is caught up).
    func setSyncLag(peer: String, records: Int, seconds: Int64) {
        let gauges = lag.withLock { made in
            if let gauges = made[peer] { return gauges }
            let gauges = (
                records: CoreMetrics.Gauge(label: "fdfs_storage_sync_lag_records", dimensions: [("peer", peer)], factory: factory),
                seconds: CoreMetrics.Gauge(label: "fdfs_storage_sync_lag_seconds", dimensions: [("peer", peer)], factory: factory)
            )
            made[peer] = gauges
            return gauges
        }
        gauges.records.record(records)
        gauges.seconds.record(seconds)
    }
}
