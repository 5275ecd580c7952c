import FDFSProtocol

/// The last known group layout, rows a restart cleans up, export, and settings.
extension MappingStore {
    // MARK: Groups and provisional rows

    public func saveGroups(_ groups: [GroupInfo]) throws(FSError) {
        try transaction(entries: false) { (db: any MetadataConnection) throws(FSError) in
            for group in groups {
                try db.run("INSERT INTO groups(name, store_paths, subdirs) VALUES(?,?,?) ON CONFLICT(name) DO UPDATE SET store_paths = excluded.store_paths, subdirs = excluded.subdirs",
                           [.text(group.name), .int(group.storePathCount), .int(group.subdirCount)])
            }
        }
    }

    public func savedGroups() throws(FSError) -> [GroupInfo] {
        try read { (db: any MetadataConnection) throws(FSError) -> [GroupInfo] in
            var list: [GroupInfo] = []
            try db.query("SELECT name, store_paths, subdirs FROM groups ORDER BY name") { (row: SQLRow) throws(FSError) in
                list.append(GroupInfo(name: row.text(0) ?? "", storePathCount: Int(row.int(1)), subdirCount: Int(row.int(2))))
            }
            return list
        }
    }

    /// Provisional rows (created, never uploaded; of `scope`'s sessions) that no pending upload
    /// will finish.
    public func abandonedProvisional(_ scope: JournalScope? = nil) throws(FSError) -> [Entry] {
        try read { (db: any MetadataConnection) throws(FSError) -> [Entry] in
            try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE state = 1 AND \(scope?.condition ?? "true") AND ino NOT IN (SELECT ino FROM pending)",
                                  scope?.values ?? [])
        }
    }

    /// Every user file with its path and ID, one line per name (for `fdfs-mount export`).
    public func exportAll() throws(FSError) -> [(path: String, fileID: String)] {
        try read { (db: any MetadataConnection) throws(FSError) -> [(path: String, fileID: String)] in
            let names = try Self.fetchEntries(db, "SELECT \(Self.columns) FROM entries WHERE kind IN (2, 13) AND parent != 0", [])
            var result: [(path: String, fileID: String)] = []
            for name in names {
                guard let file = try Self.resolved(db, name), file.kind == .file, let fileID = file.fileID, !file.isDetached else { continue }
                let path = try Self.ancestry(db, name.ino).map(\.name).joined(separator: "/")
                result.append((path, fileID))
            }
            return result.sorted { $0.path < $1.path }
        }
    }

    public func setting(_ key: String) throws(FSError) -> String? {
        try read { (db: any MetadataConnection) throws(FSError) -> String? in
            var value: String?
            try db.query("SELECT value FROM settings WHERE key = ?", [.text(key)]) { (row: SQLRow) throws(FSError) in value = row.text(0) }
            return value
        }
    }
}

extension MappingStore {
    /// The inode of the last of the synthetic directories `parts` (name and kind, from the
    /// root down: group, store path, two subdirectory levels) when every one of them has its
    /// row already, in one query; nil when one is missing (or is not of its kind).
    func syntheticChain(_ parts: [(String, EntryKind)]) throws(FSError) -> UInt64? {
        guard let first = parts.first else { return nil }
        var sql = "SELECT t\(parts.count - 1).ino FROM entries t0"
        var values: [SQLValue] = []
        // The join conditions' values come first, in join order, then the WHERE clause's.
        for (index, (name, kind)) in parts.enumerated().dropFirst() {
            sql += " JOIN entries t\(index) ON t\(index).parent = t\(index - 1).ino AND t\(index).name = ? AND t\(index).kind = ?"
            values += [.text(name), .int(kind.rawValue)]
        }
        sql += " WHERE t0.parent = ? AND t0.name = ? AND t0.kind = ?"
        values += [.int(Int64(Self.rootIno)), .text(first.0), .int(first.1.rawValue)]
        return try read { (db: any MetadataConnection) throws(FSError) -> UInt64? in
            try db.firstInt(sql, values).map { UInt64($0) }
        }
    }
}
