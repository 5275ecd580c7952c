import FDFSClient
import FDFSProtocol
import FDFSTestSupport
import Foundation
import Testing

/// `/metrics` of real fdfs-storaged and fdfs-trackerd processes: scraped over HTTP (also with
/// the request head split over several writes), counters move with uploads and downloads,
/// and the replication lag to the peer returns to 0 once the file is copied.
@Suite("Daemon metrics", .serialized)
struct MetricsTests {
    @Test("storage and tracker /metrics follow an upload, a download and its replication")
    func storageAndTrackerMetrics() async throws {
        let trackerMetrics = freePort()
        let tracker = TrackerNode(extraConfig: "metrics_port = \(trackerMetrics)")
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        let metricsA = freePort(host: "127.0.0.2")
        let a = StorageNode(ip: "127.0.0.2", port: port, trackers: [tracker.address], extraConfig: "metrics_port = \(metricsA)")
        let b = StorageNode(ip: "127.0.0.3", port: port, trackers: [tracker.address])
        let client = tracker.client()
        defer {
            Task { await client.shutdown() }
            b.destroy()
            a.destroy()
            tracker.destroy()
        }
        try await tracker.start()
        try await a.start()
        try await b.start()
        try await waitUntil(30, "A and B active") { await allActive(client, [a, b]) }

        let before = try scrapeMetrics(host: "127.0.0.2", port: metricsA, pieces: 5)
        #expect(before.status.hasPrefix("HTTP/1.1 200"))
        let uploadsBefore = metricValue(before.body, "fdfs_storage_uploads_total") ?? 0
        let downloadsBefore = metricValue(before.body, "fdfs_storage_downloads_total") ?? 0
        let bytesInBefore = metricValue(before.body, "fdfs_storage_bytes_in_total", labels: #"kind="client""#) ?? 0

        let content = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let storage = try await StorageClient.connect(a)
        defer { storage.close() }
        let id = try await storage.upload(content, ext: "bin")
        #expect(try await storage.download(id) == content)

        let after = try scrapeMetrics(host: "127.0.0.2", port: metricsA, pieces: 1)
        #expect(metricValue(after.body, "fdfs_storage_uploads_total") == uploadsBefore + 1)
        #expect(metricValue(after.body, "fdfs_storage_downloads_total") == downloadsBefore + 1)
        #expect(metricValue(after.body, "fdfs_storage_bytes_in_total", labels: #"kind="client""#) == bytesInBefore + 10_000)
        #expect((metricValue(after.body, "fdfs_storage_bytes_out_total", labels: #"kind="client""#) ?? 0) >= 10_000)
        #expect((metricValue(after.body, "fdfs_storage_binlog_records_total") ?? 0) >= 1)
        #expect((metricValue(after.body, "fdfs_storage_connections_open") ?? 0) >= 1)
        #expect((metricValue(after.body, "fdfs_storage_connections_total") ?? 0) >= 1)

        // Replicated to B: the file is there and A's lag to B is back to 0 records, 0 seconds.
        let peer = #"peer="127.0.0.3:\#(port)""#
        try await waitUntil(30, "the upload on B and A's lag to B at 0") {
            guard FileManager.default.fileExists(atPath: b.localPath(id)) else { return false }
            let text = try scrapeMetrics(host: "127.0.0.2", port: metricsA).body
            return metricValue(text, "fdfs_storage_sync_lag_records", labels: peer) == 0
                && metricValue(text, "fdfs_storage_sync_lag_seconds", labels: peer) == 0
        }
        let synced = try scrapeMetrics(host: "127.0.0.2", port: metricsA).body
        #expect((metricValue(synced, "fdfs_storage_bytes_out_total", labels: #"kind="sync""#) ?? 0) >= 10_000)

        // The tracker: both storages ACTIVE, heartbeats counted, the head split in pieces too.
        try await waitUntil(20, "the tracker to count beats") {
            let text = try scrapeMetrics(host: "127.0.0.1", port: trackerMetrics, pieces: 4).body
            return metricValue(text, "fdfs_tracker_storages", labels: #"status="ACTIVE""#) == 2
                && (metricValue(text, "fdfs_tracker_heartbeats_total") ?? 0) >= 1
        }
        let trackerText = try scrapeMetrics(host: "127.0.0.1", port: trackerMetrics).body
        #expect((metricValue(trackerText, "fdfs_tracker_connections_open") ?? 0) >= 2)
        #expect(metricValue(trackerText, "fdfs_tracker_groups") == 1)

        // Anything but /metrics is 404.
        #expect(try scrapeMetrics(host: "127.0.0.2", port: metricsA, path: "/nothing").status.hasPrefix("HTTP/1.1 404"))
    }

    @Test("connections refused by max_connections are counted")
    func refusedConnections() async throws {
        let metricsPort = freePort()
        let node = StorageNode(extraConfig: "max_connections = 1\nmetrics_port = \(metricsPort)")
        defer { node.destroy() }
        try await node.start()
        // The start-up probe's connection must be gone before the one slot is taken.
        try await waitUntil(10, "the probe connection to close") {
            metricValue(try scrapeMetrics(host: node.ip, port: metricsPort).body, "fdfs_storage_connections_open") == 0
        }
        let first = try RawSocket(host: node.ip, port: node.port)
        // The first connection is admitted once the server counts it as open.
        try await waitUntil(10, "the first connection to be open") {
            metricValue(try scrapeMetrics(host: node.ip, port: metricsPort).body, "fdfs_storage_connections_open") == 1
        }
        let second = try RawSocket(host: node.ip, port: node.port)
        #expect(second.secondsUntilClosed(within: 5) != nil)
        let text = try scrapeMetrics(host: node.ip, port: metricsPort).body
        #expect(metricValue(text, "fdfs_storage_connections_refused_total", labels: #"reason="max_connections""#) == 1)
        _ = first
    }
}
