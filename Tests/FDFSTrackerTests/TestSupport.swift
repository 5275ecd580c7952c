import FDFSProtocol
@testable import FDFSTracker
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A clock the test sets by hand (unix seconds).
final class ManualClock: Sendable {
    private let box: NIOLockedValueBox<Int64>
    init(_ now: Int64) { box = NIOLockedValueBox(now) }
    var now: Int64 {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
    func advance(_ seconds: Int64) { box.withLockedValue { $0 += seconds } }
}

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// Settings like the captured cluster's tracker.conf (reserved space 1%).
func capturedClusterSettings() -> TrackerSettings {
    var settings = TrackerSettings()
    settings.reservedSpace = .ratio(0.01)
    return settings
}

/// A service with an in-memory registry and a manual clock.
func makeService(_ settings: TrackerSettings = capturedClusterSettings(), now: Int64 = 1_795_257_000) -> (TrackerService, ManualClock) {
    let clock = ManualClock(now)
    let service = TrackerService(settings: settings, store: nil, logger: quietLogger, clock: { clock.now })
    return (service, clock)
}

/// One simulated connection to the service.
struct Peer {
    let service: TrackerService
    var connection: TrackerConnection

    init(_ service: TrackerService, ip: String, trackerIP: String = "127.0.0.10", trackerPort: Int = 22122) {
        self.service = service
        connection = TrackerConnection(peerIP: ip, localIP: trackerIP, localPort: trackerPort)
    }

    /// Sends a request; returns status and body.
    @discardableResult
    mutating func send(_ command: FDFSCommand, _ body: ByteBuffer = ByteBuffer()) -> (status: UInt8, body: ByteBuffer) {
        let reply = service.handle(FDFSHeader(bodyLength: Int64(body.readableBytes), command: command), body: body, connection: &connection)
        guard case let .respond(status, replyBody) = reply else { return (255, ByteBuffer()) }
        return (status.rawValue, replyBody)
    }

    /// Sends a captured request frame; returns the whole reply frame (nil when the connection
    /// is closed instead).
    mutating func replay(_ frame: Frame) -> [UInt8]? {
        service.handle(frame.header, body: frame.body, connection: &connection).frame?.bytes
    }

    func close() { service.connectionClosed(connection) }

    /// A storage's JOIN with the values the captured storages sent.
    static func join(group: String = "group1", port: Int64 = 23000, initFlag: Bool = false, status: Int8 = 0, paths: Int64 = 1, priority: Int64 = 10) -> ByteBuffer {
        StorageJoinRequest(
            group: group, storagePort: port, storePathCount: paths, subdirCountPerPath: 256, uploadPriority: priority,
            joinTime: 1_795_256_751, upTime: 1_795_257_205, initFlag: initFlag, status: status,
            currentTrackerIP: "127.0.0.10", trackers: ["127.0.0.10:22122"]
        ).encoded()
    }

    static func usage(_ paths: [(Int64, Int64)]) -> ByteBuffer {
        StorageDiskUsageReport(paths: paths.map { StorePathUsage(totalMB: $0.0, freeMB: $0.1) }).encoded()
    }

    /// Joins, ends the (empty) initial sync and beats: the storage ends ACTIVE.
    mutating func joinActive(group: String = "group1", port: Int64 = 23000, usage: [(Int64, Int64)] = [(100_000, 50_000)], priority: Int64 = 10) {
        let joined = send(.storageJoin, Self.join(group: group, port: port, paths: Int64(usage.count), priority: priority))
        precondition(joined.status == 0, "join failed with \(joined.status)")
        send(.storageSyncNotify, StorageSyncSource.none.encoded())
        send(.storageBeat)
        send(.storageReportDiskUsage, Self.usage(usage))
    }
}
