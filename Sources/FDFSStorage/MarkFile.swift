import Foundation

/// The replication cursor of one sync task (reference §6.4), kept in
/// `<base_path>/data/sync/<peer ip>_<port>.mark` as ini `key=value` lines.
public struct SyncMark: Hashable, Sendable {
    public var binlogIndex = 0
    public var binlogOffset: Int64 = 0
    /// This storage is the full-sync source of the peer.
    public var needSyncOld = false
    public var syncOldDone = false
    public var untilTimestamp: Int64 = 0
    public var scanRowCount: Int64 = 0
    public var syncRowCount: Int64 = 0
    /// Files some of whose changes were not sent because the file was gone here by then
    /// (renamed or deleted since). Written as `skipped_files=` only when there are any.
    public var skippedFiles: Set<String> = []

    public init() {}

    /// `<peer ip>_<port>.mark`.
    public static func fileName(peerIP: String, port: Int) -> String { "\(peerIP)_\(port).mark" }

    public var text: String {
        """
        binlog_index=\(binlogIndex)
        binlog_offset=\(binlogOffset)
        need_sync_old=\(needSyncOld ? 1 : 0)
        sync_old_done=\(syncOldDone ? 1 : 0)
        until_timestamp=\(untilTimestamp)
        scan_row_count=\(scanRowCount)
        sync_row_count=\(syncRowCount)
        \(skippedFiles.isEmpty ? "" : "skipped_files=\(skippedFiles.sorted().joined(separator: ","))\n")
        """
    }

    /// Parses a mark file's text; nil if a required key is missing or bad.
    public init?(text: String) {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            values[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        guard let index = values["binlog_index"].flatMap({ Int($0) }), index >= 0,
              let offset = values["binlog_offset"].flatMap({ Int64($0) }), offset >= 0 else { return nil }
        binlogIndex = index
        binlogOffset = offset
        needSyncOld = Self.bool(values["need_sync_old"])
        syncOldDone = Self.bool(values["sync_old_done"])
        untilTimestamp = values["until_timestamp"].flatMap { Int64($0) } ?? 0
        scanRowCount = values["scan_row_count"].flatMap { Int64($0) } ?? 0
        syncRowCount = values["sync_row_count"].flatMap { Int64($0) } ?? 0
        skippedFiles = Set((values["skipped_files"] ?? "").split(separator: ",").map(String.init))
    }

    private static func bool(_ text: String?) -> Bool {
        guard let text else { return false }
        return ["1", "true", "yes", "on"].contains(text.lowercased())
    }

    /// Reads a mark file; nil when it does not exist or cannot be parsed.
    public static func load(path: String) -> SyncMark? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return SyncMark(text: text)
    }

    /// Writes the mark file atomically (temp file, then rename).
    public func write(path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
