/// The cluster files each mount session has open (schema version 4, written on PostgreSQL
/// only): a file no name refers to any more is deleted from the cluster only when no live
/// session has it open. A mount records a file when its first descriptor on it opens and
/// drops it when its last one closes; the two are counted (+1, −1) rather than set, so that
/// they may reach the database in either order.
extension MappingStore {
    /// This session opened its first descriptor on `fileID`.
    public func fileOpened(_ fileID: String) throws(FSError) {
        try with { (db: any MetadataConnection) throws(FSError) in
            try db.run("INSERT INTO open_files(session, file_id, count) VALUES(?,?,1) ON CONFLICT(session, file_id) DO UPDATE SET count = open_files.count + 1",
                       [.text(session), .text(fileID)])
        }
    }

    /// This session closed its last descriptor on `fileID`.
    public func fileClosed(_ fileID: String) throws(FSError) {
        try with { (db: any MetadataConnection) throws(FSError) in
            try db.run("INSERT INTO open_files(session, file_id, count) VALUES(?,?,-1) ON CONFLICT(session, file_id) DO UPDATE SET count = open_files.count - 1",
                       [.text(session), .text(fileID)])
            try db.run("DELETE FROM open_files WHERE session = ? AND file_id = ? AND count = 0", [.text(session), .text(fileID)])
        }
    }

    /// Is `fileID` open on a session other than this store's whose heartbeat is not older
    /// than `aliveSince`?
    public func isOpenElsewhere(_ fileID: String, aliveSince: Int64) throws(FSError) -> Bool {
        try with { (db: any MetadataConnection) throws(FSError) -> Bool in
            try db.firstInt("""
                SELECT 1 FROM open_files o JOIN mount_sessions s ON s.id = o.session
                WHERE o.file_id = ? AND o.session != ? AND o.count > 0 AND s.heartbeat >= ? LIMIT 1
                """, [.text(fileID), .text(session), .int(aliveSince)]) != nil
        }
    }
}
