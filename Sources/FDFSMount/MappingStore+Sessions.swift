/// The mounts that share a namespace (schema version 3): each registers a session and renews
/// its heartbeat, so that the others can tell a live mount's journal rows (version 4: tagged
/// with its session) from a dead one's, which one of them takes over
/// (MappingStore+Takeover.swift).
extension MappingStore {
    /// Registers (or renews) session `id` of this mount.
    public func beginSession(_ id: String, host: String, pid: Int, now: Int64) throws(FSError) {
        try transaction(entries: false) { (db: any MetadataConnection) throws(FSError) in
            try db.run("DELETE FROM mount_sessions WHERE id = ?", [.text(id)])
            // Opens recorded by this session's previous run are over.
            try db.run("DELETE FROM open_files WHERE session = ?", [.text(id)])
            try db.run("INSERT INTO mount_sessions(id, host, pid, started, heartbeat) VALUES(?,?,?,?,?)",
                       [.text(id), .text(host), .int(pid), .int(now), .int(now)])
        }
    }

    /// Renews the heartbeat of session `id`. false: the session is gone (another mount took
    /// it over after it missed its heartbeats, or it was ended).
    public func heartbeat(_ id: String, now: Int64) throws(FSError) -> Bool {
        try read { (db: any MetadataConnection) throws(FSError) -> Bool in
            try db.firstInt("UPDATE mount_sessions SET heartbeat = ? WHERE id = ? RETURNING heartbeat", [.int(now), .text(id)]) != nil
        }
    }

    /// Removes session `id` (a clean unmount) and its open files.
    public func endSession(_ id: String) throws(FSError) {
        try transaction { (db: any MetadataConnection) throws(FSError) in
            try db.run("DELETE FROM mount_sessions WHERE id = ?", [.text(id)])
            try db.run("DELETE FROM open_files WHERE session = ?", [.text(id)])
        }
    }

    /// The sessions other than `id` whose heartbeat is not older than `since`.
    public func otherLiveSessions(_ id: String, since: Int64) throws(FSError) -> [(host: String, pid: Int)] {
        try read { (db: any MetadataConnection) throws(FSError) -> [(host: String, pid: Int)] in
            var sessions: [(host: String, pid: Int)] = []
            try db.query("SELECT host, pid FROM mount_sessions WHERE id != ? AND heartbeat >= ?", [.text(id), .int(since)]) { (row: SQLRow) throws(FSError) in
                sessions.append((row.text(0) ?? "?", Int(row.int(1))))
            }
            return sessions
        }
    }
}
