import Foundation

/// `<base_path>/data/.data_init_flag` (reference §6.5, §8.5): when this storage first joined,
/// whether its initial-sync negotiation is done, and the source the tracker assigned.
struct InitFlag: Hashable, Sendable {
    var joinTime: Int64 = 0
    var syncOldDone = false
    var syncSource = ""
    var syncUntil: Int64 = 0
    var lastIP = ""
    var lastPort = 0

    var text: String {
        """
        storage_join_time=\(joinTime)
        sync_old_done=\(syncOldDone ? 1 : 0)
        sync_src_server=\(syncSource)
        sync_until_timestamp=\(syncUntil)
        last_ip_addr=\(lastIP)
        last_server_port=\(lastPort)

        """
    }

    static func load(path: String) -> InitFlag? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var flag = InitFlag()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "storage_join_time": flag.joinTime = Int64(parts[1]) ?? 0
            case "sync_old_done": flag.syncOldDone = parts[1] == "1" || parts[1].lowercased() == "true"
            case "sync_src_server": flag.syncSource = parts[1]
            case "sync_until_timestamp": flag.syncUntil = Int64(parts[1]) ?? 0
            case "last_ip_addr": flag.lastIP = parts[1]
            case "last_server_port": flag.lastPort = Int(parts[1]) ?? 0
            default: break
            }
        }
        return flag
    }

    func write(path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
