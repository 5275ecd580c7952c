/// Which sessions' journal rows an operation acts on: a condition on the `session` column of
/// `pending`, `streams` and `entries` (schema version 4).
public struct JournalScope: Sendable {
    let condition: String
    let values: [SQLValue]
    /// Whether the spool files the rows name are this mount's (its own rows: an upload whose
    /// file ID was not recorded is redone from its spool). Rows taken over from another mount
    /// name that mount's spool, which is not here.
    public let spoolIsLocal: Bool

    /// This mount's own rows; with `untagged`, also rows whose owner is no registered session
    /// (SQLite's one implicit session, rows written before schema version 4, and those of a
    /// mount that ended its session with work left, such as a name it never closed).
    public static func own(_ session: String, untagged: Bool) -> JournalScope {
        untagged
            ? JournalScope(condition: "(session = ? OR session = '' OR session IS NULL OR session NOT IN (SELECT id FROM mount_sessions))",
                           values: [.text(session)], spoolIsLocal: true)
            : JournalScope(condition: "session = ?", values: [.text(session)], spoolIsLocal: true)
    }

    /// Rows that session `session` took over from dead sessions and has not finished yet.
    public static func takenOver(by session: String) -> JournalScope {
        let prefix = takeoverPrefix(session)
        return JournalScope(condition: "substr(session, 1, \(prefix.count)) = ?", values: [.text(prefix)], spoolIsLocal: false)
    }

    /// The tag of rows that `session` took over while it finishes them (`ME/DEAD`).
    static func takeoverPrefix(_ session: String) -> String { session + "/" }
}

/// Taking over a dead session's journal (schema version 4). A session that missed its
/// heartbeats is claimed by exactly one live mount: the claim deletes its `mount_sessions` row
/// (locked with `FOR UPDATE SKIP LOCKED`, so two mounts racing cannot both get it) and, in the
/// same transaction, re-tags its rows as this mount's takeover (`ME/DEAD`), hands its due
/// metadata writes to this mount and forgets its open files. The rows are then finished by the
/// same recovery as a mount's own after a crash (``JournalScope/takenOver(by:)``); if this
/// mount dies first, its own restart — or the mount that takes it over — finishes them.
extension MappingStore {
    /// Sessions other than this store's whose last heartbeat is older than `before`.
    public func deadSessions(before: Int64) throws(FSError) -> [String] {
        try with { (db: any MetadataConnection) throws(FSError) -> [String] in
            var ids: [String] = []
            try db.query("SELECT id FROM mount_sessions WHERE id != ? AND heartbeat < ?", [.text(session), .int(before)]) { (row: SQLRow) throws(FSError) in
                ids.append(row.text(0) ?? "")
            }
            return ids
        }
    }

    /// Claims dead session `dead` (its heartbeat older than `before`) for this store's session:
    /// true for the one mount that got it, whose takeover scope now holds its rows.
    public func claimSession(_ dead: String, before: Int64) throws(FSError) -> Bool {
        guard engine == .postgres else { return false }
        return try transaction { (db: any MetadataConnection) throws(FSError) -> Bool in
            let claimed = try db.firstInt("""
                WITH claimed AS (DELETE FROM mount_sessions WHERE id IN (
                  SELECT id FROM mount_sessions WHERE id = ? AND heartbeat < ? FOR UPDATE SKIP LOCKED) RETURNING id)
                SELECT COUNT(*) FROM claimed
                """, [.text(dead), .int(before)]) ?? 0
            guard claimed > 0 else { return false }
            let tag = JournalScope.takeoverPrefix(session) + dead
            // The dead session's own rows, and those it had itself taken over and not finished.
            let owned = "(session = ? OR substr(session, 1, \(dead.count + 1)) = ?)"
            let values: [SQLValue] = [.text(dead), .text(JournalScope.takeoverPrefix(dead))]
            for table in ["pending", "streams", "entries"] {
                try db.run("UPDATE \(table) SET session = ? WHERE \(owned)", [.text(tag)] + values)
            }
            try db.run("UPDATE metadata_due SET session = ? WHERE \(owned)", [.text(session)] + values)
            try db.run("DELETE FROM open_files WHERE session = ?", [.text(dead)])
            return true
        }
    }

    /// Due metadata writes whose owner is no registered session (written before schema
    /// version 4, or left by a mount that ended its session) become this session's.
    public func adoptUnownedMetadata() throws(FSError) {
        try with { (db: any MetadataConnection) throws(FSError) in
            try db.run("UPDATE metadata_due SET session = ? WHERE session NOT IN (SELECT id FROM mount_sessions)", [.text(session)])
        }
    }
}
