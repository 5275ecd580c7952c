import FDFSClient

/// A tracker and the two storages of group1 on 127.0.0.2 and 127.0.0.3, started and ACTIVE:
/// the setup of the replication tests.
final class TwoMemberGroup: @unchecked Sendable {
    let tracker: TrackerNode
    let a: StorageNode
    let b: StorageNode
    let client: FDFSClient

    private init(tracker: TrackerNode, a: StorageNode, b: StorageNode) {
        self.tracker = tracker
        self.a = a
        self.b = b
        client = tracker.client()
    }

    /// Starts the three processes and waits until both storages are ACTIVE. `httpOnB` gives
    /// the second storage an HTTP port.
    static func start(httpOnB: Bool = false) async throws -> TwoMemberGroup {
        let tracker = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        let a = StorageNode(ip: "127.0.0.2", port: port, trackers: [tracker.address])
        let b = StorageNode(ip: "127.0.0.3", port: port, trackers: [tracker.address], httpPort: httpOnB ? freePort(host: "127.0.0.3") : nil)
        let group = TwoMemberGroup(tracker: tracker, a: a, b: b)
        do {
            try await tracker.start()
            try await a.start()
            try await b.start()
            try await waitUntil(30, "A and B active") { await allActive(group.client, [a, b]) }
        } catch {
            group.destroy()
            throw error
        }
        return group
    }

    /// Stops everything and removes the directories.
    func destroy() {
        let client = client
        Task { await client.shutdown() }
        b.destroy()
        a.destroy()
        tracker.destroy()
    }
}
