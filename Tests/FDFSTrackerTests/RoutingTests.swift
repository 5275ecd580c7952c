import FDFSProtocol
@testable import FDFSTracker
import NIOCore
import Testing

/// Download and update routing with the read-after-write rule (reference §2.3, §6.6).
@Suite("Routing")
struct RoutingTests {
    static let now: Int64 = 1_795_257_000

    /// A remote filename whose source is `ip`, created at `timestamp`.
    static func remoteName(source ip: String, timestamp: Int64, appender: Bool = false, slaveSuffix: String = "") -> String {
        let name = GeneratedName(source: .init(ipv4: ip)!, timestamp: UInt32(timestamp), size: 14, crc32: 0x1234, appender: appender, randomBits: 7)
        return "M00/00/00/" + name.encoded + (slaveSuffix.isEmpty ? "123.txt" : "\(slaveSuffix).txt")
    }

    /// Two ACTIVE storages in group1: A = 127.0.0.2 and B = 127.0.0.3.
    func cluster(_ settings: TrackerSettings = capturedClusterSettings()) -> (TrackerService, ManualClock, Peer, Peer) {
        let (service, clock) = makeService(settings, now: Self.now)
        var a = Peer(service, ip: "127.0.0.2"); a.joinActive()
        var b = Peer(service, ip: "127.0.0.3"); b.joinActive()
        return (service, clock, a, b)
    }

    func fetch(_ peer: inout Peer, _ command: FDFSCommand, _ remote: String) throws -> [String] {
        let reply = peer.send(command, FileRequest(group: "group1", remoteFilename: remote).encoded())
        guard reply.status == 0 else { return ["status \(reply.status)"] }
        return try FetchTargets.decode(reply.body).storages.map(\.ip)
    }

    @Test("a fresh file is served only by its source until the others report having it")
    func readAfterWrite() throws {
        var (service, _, _, b) = cluster()
        var client = Peer(service, ip: "127.0.0.1")
        let fresh = Self.remoteName(source: "127.0.0.2", timestamp: Self.now - 5)
        #expect(try (0..<4).map { _ in try fetch(&client, .queryFetchOne, fresh) } == Array(repeating: ["127.0.0.2"], count: 4))
        #expect(try fetch(&client, .queryFetchAll, fresh) == ["127.0.0.2"])
        // B reports that it received A's records up to a time after the file: B may serve it.
        let report = StorageSyncReport(entries: [.init(sourceID: "127.0.0.2", timestamp: Int32(Self.now - 1))])
        #expect(b.send(.storageSyncReport, report.encoded()).status == 0)
        let served = try (0..<4).map { _ in try fetch(&client, .queryFetchOne, fresh)[0] }
        #expect(Set(served) == ["127.0.0.2", "127.0.0.3"])
        #expect(try fetch(&client, .queryFetchAll, fresh) == ["127.0.0.2", "127.0.0.3"])
        #expect(service.registry.groups["group1"]?.syncTimestamps["127.0.0.2"]?["127.0.0.3"] == Int32(Self.now - 1))
    }

    @Test("storage_sync_file_max_delay and storage_sync_file_max_time")
    func delays() throws {
        var settings = capturedClusterSettings()
        settings.storageSyncFileMaxDelay = 3600
        settings.storageSyncFileMaxTime = 60
        var (service, clock, _, b) = cluster(settings)
        var client = Peer(service, ip: "127.0.0.1")
        let old = Self.remoteName(source: "127.0.0.2", timestamp: Self.now - 3601)
        #expect(Set(try (0..<4).map { _ in try fetch(&client, .queryFetchOne, old)[0] }) == ["127.0.0.2", "127.0.0.3"])
        // B has synced up to one second before the file: eligible only once max_time passed.
        let file = Self.remoteName(source: "127.0.0.2", timestamp: Self.now)
        b.send(.storageSyncReport, StorageSyncReport(entries: [.init(sourceID: "127.0.0.2", timestamp: Int32(Self.now - 1))]).encoded())
        #expect(try fetch(&client, .queryFetchAll, file) == ["127.0.0.2"])
        clock.advance(61)
        #expect(try fetch(&client, .queryFetchAll, file) == ["127.0.0.2", "127.0.0.3"])
    }

    @Test("appender and slave files go to the source; download_server 1 prefers the source")
    func sourceFirst() throws {
        var (service, _, _, _) = cluster()
        var client = Peer(service, ip: "127.0.0.1")
        let old = Self.now - 100_000
        let appender = Self.remoteName(source: "127.0.0.3", timestamp: old, appender: true)
        let slave = Self.remoteName(source: "127.0.0.3", timestamp: old, slaveSuffix: "_150x150")
        for remote in [appender, slave] {
            #expect(try (0..<3).map { _ in try fetch(&client, .queryFetchOne, remote) } == Array(repeating: ["127.0.0.3"], count: 3))
            #expect(try fetch(&client, .queryFetchAll, remote) == ["127.0.0.3"])
        }
        var settings = capturedClusterSettings()
        settings.downloadServer = .sourceFirst
        (service, _, _, _) = cluster(settings)
        client = Peer(service, ip: "127.0.0.1")
        let normal = Self.remoteName(source: "127.0.0.3", timestamp: old)
        #expect(try (0..<3).map { _ in try fetch(&client, .queryFetchOne, normal) } == Array(repeating: ["127.0.0.3"], count: 3))
    }

    @Test("UPDATE goes to the source while it is ACTIVE, else to another writable storage")
    func update() throws {
        let (service, _, a, _) = cluster()
        var client = Peer(service, ip: "127.0.0.1")
        let file = Self.remoteName(source: "127.0.0.2", timestamp: Self.now - 10)
        #expect(try fetch(&client, .queryUpdate, file) == ["127.0.0.2"])
        a.close()
        #expect(try fetch(&client, .queryUpdate, file) == ["127.0.0.3"])
        #expect(try fetch(&client, .queryFetchOne, file) == ["127.0.0.3"])  // the store server fallback
    }

    @Test("unknown group → ENOENT; short or long body → EINVAL (as captured: 102 with a 15-byte name)")
    func errors() throws {
        let (service, _, _, _) = cluster()
        var client = Peer(service, ip: "127.0.0.1")
        let file = Self.remoteName(source: "127.0.0.2", timestamp: Self.now)
        let unknown = client.send(.queryFetchOne, FileRequest(group: "nosuchgroup", remoteFilename: file).encoded())
        #expect(unknown.status == FDFSStatus.ENOENT.rawValue)
        #expect(client.send(.queryFetchOne, FileRequest(group: "group1", remoteFilename: "M00/00/00/x.txt").encoded()).status == FDFSStatus.EINVAL.rawValue)
        #expect(client.send(.queryFetchOne, FileRequest(group: "group1", remoteFilename: String(repeating: "A", count: 128)).encoded()).status == FDFSStatus.EINVAL.rawValue)
    }
}
