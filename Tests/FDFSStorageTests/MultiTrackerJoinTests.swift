import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// A new member of a group served by two trackers, which learn about it and about its sync
/// source at different times (as in `Scripts/cluster start` under load, which then stalled with
/// the new storage in WAIT_SYNC for good).
@Suite(.serialized) struct MultiTrackerJoinTests {
    func read(_ node: StorageNode, _ id: FileID) -> [UInt8]? {
        FileManager.default.contents(atPath: node.localPath(id)).map { [UInt8]($0) }
    }

    /// The first tracker knows the newcomer in WAIT_SYNC but not its source (its SYNC_NOTIFY
    /// failed there: the source had not joined that tracker yet), and the source asks that
    /// tracker first. The source must still find out that it is the source, replay its files,
    /// and the newcomer must become ACTIVE on both trackers.
    @Test func newMemberBecomesActiveWhenOnlyOneTrackerKnowsItsSource() async throws {
        let first = TrackerNode(), second = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        // s1 retries a tracker it could not reach after heart_beat_interval: it joins the first
        // tracker only seconds after that tracker has come up, which opens the window.
        let s1 = StorageNode(ip: "127.0.0.2", port: port, trackers: [first.address, second.address], heartBeatInterval: 8)
        let s2 = StorageNode(ip: "127.0.0.3", port: port, trackers: [first.address, second.address])
        defer { s2.destroy(); s1.destroy(); second.destroy(); first.destroy() }

        try await second.start()
        try await s1.start()
        let viaSecond = second.client()
        defer { Task { await viaSecond.shutdown() } }
        try await waitUntil(20, "s1 ACTIVE on the second tracker") { await allActive(viaSecond, [s1]) }
        let before = Array("stored before the new member came\n".utf8)
        let old = try await viaSecond.upload(before, options: UploadOptions(fileExtension: "txt"))

        // s2 got its source (s1) from the second tracker before it restarted; now it tells every
        // tracker with SYNC_NOTIFY. The first tracker does not know s1 yet: ENOENT there, and s2
        // is WAIT_SYNC without a source on it.
        try FileManager.default.createDirectory(atPath: s2.basePath + "/data", withIntermediateDirectories: true)
        let now = Int(Date().timeIntervalSince1970)
        try "storage_join_time=\(now)\nsync_old_done=1\nsync_src_server=\(s1.ip)\nsync_until_timestamp=\(now + 1)\n"
            .write(toFile: s2.basePath + "/data/.data_init_flag", atomically: true, encoding: .utf8)
        try await first.start()
        try await s2.start()
        let viaFirst = first.client()
        defer { Task { await viaFirst.shutdown() } }

        let converged = (try? await waitUntil(40, "s2 ACTIVE on both trackers") {
            guard await allActive(viaFirst, [s1, s2]) else { return false }
            return await allActive(viaSecond, [s1, s2])
        }) != nil
        let onFirst = await trackerStatus(viaFirst, s2), onSecond = await trackerStatus(viaSecond, s2)
        #expect(converged, "s2 is not ACTIVE everywhere (first tracker: \(onFirst?.name ?? "-"), second: \(onSecond?.name ?? "-"))")
        guard converged else { return }

        // The full sync brought the old file; new files replicate both ways.
        try await waitUntil(20, "the old file on s2") { read(s2, old) == before }
        for (index, target) in [s1, s2].enumerated() {
            let content = Array("uploaded to \(target.ip) after the join #\(index)\n".utf8)
            let direct = try await StorageClient.connect(target)
            let id = try await direct.upload(content, ext: "txt")
            direct.close()
            try await waitUntil(20, "\(id) on both") { read(s1, id) == content && read(s2, id) == content }
        }
    }

    /// A member that one tracker does not know as such (s2 cannot reach it) is still a member:
    /// the other tracker lists it ACTIVE. When s1 reconnects to the first tracker and gets its
    /// whole member list, s1 must go on accepting s2's sync commands and syncing to it.
    @Test func memberListedByOneTrackerOnlyKeepsSyncing() async throws {
        let first = TrackerNode(extraConfig: "allow_hosts = 127.0.0.1\nallow_hosts = 127.0.0.2\n")
        let second = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        let s1 = StorageNode(ip: "127.0.0.2", port: port, trackers: [first.address, second.address])
        let s2 = StorageNode(ip: "127.0.0.3", port: port, trackers: [first.address, second.address])
        defer { s2.destroy(); s1.destroy(); second.destroy(); first.destroy() }
        try await first.start()
        try await second.start()
        try await s1.start()
        let viaFirst = first.client(), viaSecond = second.client()
        defer { Task { await viaFirst.shutdown(); await viaSecond.shutdown() } }
        try await waitUntil(20, "s1 ACTIVE on the first tracker") { await allActive(viaFirst, [s1]) }
        try await s2.start()
        try await waitUntil(30, "s1 and s2 ACTIVE on the second tracker") { await allActive(viaSecond, [s1, s2]) }

        // s1 joins the restarted first tracker again and gets its whole member list, in which s2
        // is at best OFFLINE (added by s1's REPORT_STATUS, never joined there).
        let logsBefore = s1.logs.count
        first.stop()
        try await first.start()
        let joinLine = "joined tracker \(first.address)"
        try await waitUntil(20, "s1 to join the first tracker again") {
            guard s1.logs.components(separatedBy: joinLine).count - 1 >= 2 else { return false }
            return await allActive(viaFirst, [s1])
        }
        try await Task.sleep(for: .seconds(2))

        for target in [s2, s1] {
            let content = Array("uploaded to \(target.ip) while one tracker does not know s2\n".utf8)
            let direct = try await StorageClient.connect(target)
            let id = try await direct.upload(content, ext: "txt")
            direct.close()
            let arrived = (try? await waitUntil(20, "\(id) on both") { read(s1, id) == content && read(s2, id) == content }) != nil
            #expect(arrived, "\(id) uploaded to \(target.ip) did not reach the other member")
        }
        let refusals = s1.logs.dropFirst(logsBefore).split(separator: "\n").filter { $0.contains("is not a member") }
        #expect(refusals.isEmpty, "s1 refused s2:\n\(refusals.prefix(3).joined(separator: "\n"))")
    }
}
