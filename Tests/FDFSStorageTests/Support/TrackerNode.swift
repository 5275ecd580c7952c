import FDFSClient
import FDFSProtocol
import Foundation
import class FDFSTestSupport.ChildProcess
import enum FDFSTestSupport.Processes
import class FDFSTestSupport.TemporaryDirectory

/// One `fdfs-trackerd` on 127.0.0.1 with a temp base path.
final class TrackerNode: @unchecked Sendable {
    let dir = TemporaryDirectory("fdfs-trackerd")
    let port = freePort()
    let reserved: String
    let extraConfig: String
    var process: ChildProcess?

    init(reserved: String = "10M", extraConfig: String = "") {
        self.reserved = reserved
        self.extraConfig = extraConfig
    }

    var address: String { "127.0.0.1:\(port)" }

    func start() async throws {
        let conf = dir.path + "/tracker.conf"
        try FileManager.default.createDirectory(atPath: dir.path + "/base", withIntermediateDirectories: true)
        try """
        bind_addr = 127.0.0.1
        port = \(port)
        base_path = \(dir.path)/base
        check_active_interval = 10
        reserved_storage_space = \(reserved)
        store_lookup = 0
        storage_sync_file_max_time = 2
        \(extraConfig)
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let process = try ChildProcess(daemon: try Processes.builtExecutable("fdfs-trackerd"), [conf], log: dir.path + "/trackerd.log")
        self.process = process
        let port = self.port
        try await waitUntil(20, "tracker to listen") {
            guard process.isRunning else { throw TestFailure("fdfs-trackerd exited: \(process.log)") }
            return isListening(host: "127.0.0.1", port: port)
        }
    }

    func client() -> FDFSClient {
        FDFSClient(configuration: ClientConfiguration(trackers: [ServerAddress(host: "127.0.0.1", port: port)], connectTimeout: .seconds(3), networkTimeout: .seconds(20)))
    }

    /// Stops the process; its state stays for the next ``start()``.
    func stop() { process?.stop() }

    func destroy() {
        process?.stop()
        dir.remove()
    }
}

/// A port free on every one of `hosts` (group members must share the storage port).
func sharedFreePort(_ hosts: [String]) -> Int {
    for _ in 0..<50 {
        let port = freePort(host: hosts[0])
        if hosts.dropFirst().allSatisfy({ !isListening(host: $0, port: port) }) { return port }
    }
    return freePort(host: hosts[0])
}

/// The tracker's view of a storage's status.
func trackerStatus(_ client: FDFSClient, _ node: StorageNode) async -> StorageStatus? {
    guard let storages = try? await client.tracker.listStorages(group: node.group) else { return nil }
    return storages.first { $0.ip == node.ip }?.storageStatus
}

/// True when the tracker lists every one of `nodes` as ACTIVE.
func allActive(_ client: FDFSClient, _ nodes: [StorageNode]) async -> Bool {
    for node in nodes where await trackerStatus(client, node) != .active { return false }
    return true
}
