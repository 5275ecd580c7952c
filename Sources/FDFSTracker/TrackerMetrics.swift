import CoreMetrics
import FDFSMetrics
import FDFSProtocol

/// The tracker's metrics (swift-metrics, in a Prometheus registry of its own):
/// connections, heartbeats, state saves, and, set at each scrape, storages per status.
public final class TrackerMetrics: Sendable {
    /// The registry to render.
    public let registry: MetricsRegistry
    let connectionsAccepted: CoreMetrics.Counter
    let connectionsOpen: CoreMetrics.Meter
    let refusedByAllowHosts: CoreMetrics.Counter
    let refusedByLimit: CoreMetrics.Counter
    let heartbeats: CoreMetrics.Counter
    let requests: CoreMetrics.Counter
    let stateSaves: CoreMetrics.Counter
    let stateSaveFailures: CoreMetrics.Counter
    private let storagesByStatus: [StorageStatus: CoreMetrics.Gauge]
    private let groups: CoreMetrics.Gauge

    public init() {
        let registry = MetricsRegistry()
        let factory = registry.factory
        self.registry = registry
        connectionsAccepted = Counter(label: "fdfs_tracker_connections_total", factory: factory)
        connectionsOpen = Meter(label: "fdfs_tracker_connections_open", factory: factory)
        refusedByAllowHosts = Counter(label: "fdfs_tracker_connections_refused_total", dimensions: [("reason", "allow_hosts")], factory: factory)
        refusedByLimit = Counter(label: "fdfs_tracker_connections_refused_total", dimensions: [("reason", "max_connections")], factory: factory)
        heartbeats = Counter(label: "fdfs_tracker_heartbeats_total", factory: factory)
        requests = Counter(label: "fdfs_tracker_requests_total", factory: factory)
        stateSaves = Counter(label: "fdfs_tracker_state_saves_total", factory: factory)
        stateSaveFailures = Counter(label: "fdfs_tracker_state_save_failures_total", factory: factory)
        var byStatus: [StorageStatus: CoreMetrics.Gauge] = [:]
        for status in StorageStatus.allCases {
            byStatus[status] = Gauge(label: "fdfs_tracker_storages", dimensions: [("status", status.name)], factory: factory)
        }
        storagesByStatus = byStatus
        groups = Gauge(label: "fdfs_tracker_groups", factory: factory)
    }

    /// Sets the registry gauges from a snapshot (at each scrape).
    func update(from registry: TrackerRegistry) {
        var counts: [StorageStatus: Int] = [:]
        for group in registry.groups.values {
            for storage in group.storages.values { counts[storage.status, default: 0] += 1 }
        }
        for (status, gauge) in storagesByStatus { gauge.record(counts[status] ?? 0) }
        groups.record(registry.groups.count)
    }
}
