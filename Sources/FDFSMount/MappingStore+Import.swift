import FDFSProtocol

/// `fdfs-mount meta import`: names for cluster files that exist already (uploaded with the
/// `fdfs` CLI or any FastDFS client before the mount existed).
public enum ImportLine {
    /// One parsed line: the path's components (group first) and the file ID.
    public struct Parsed: Sendable, Equatable {
        public var components: [String]
        public var fileID: FileID
        public var path: String { components.joined(separator: "/") }
    }

    /// Parses `PATH<TAB>FILE_ID` (further tab-separated columns, as `export` writes them, are
    /// ignored). PATH is relative to the mount root, escaped as `export` escapes it, starts
    /// with the file's group and names a place users may write: no empty, `.` or `..`
    /// component, no NUL, components of at most 255 bytes, not inside the generated-name tree
    /// (`groupN/Mxx/…`). FILE_ID goes through the protocol's file-ID validation.
    public static func parse(_ line: Substring) throws(FSError) -> Parsed {
        let columns = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
        guard columns.count >= 2 else { throw FSError(.invalid, "expected PATH<TAB>FILE_ID") }
        guard let path = ExportRow.unescaped(columns[0]) else { throw FSError(.invalid, "malformed escape in the path") }
        let fileID: FileID
        do { fileID = try FileID(String(columns[1])) } catch { throw FSError(.invalid, "file ID: \(error.message)") }
        guard !path.hasPrefix("/") else { throw FSError(.invalid, "the path must be relative to the mount root (groupN/…), not absolute") }
        guard path.utf8.count <= 4096 else { throw FSError(.nameTooLong, "the path is longer than 4096 bytes") }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for component in components {
            guard !component.isEmpty else { throw FSError(.invalid, "empty component in the path") }
            guard component != ".", component != ".." else { throw FSError(.invalid, "'\(component)' in the path") }
            guard !component.utf8.contains(0) else { throw FSError(.invalid, "NUL in the path") }
            guard component.utf8.count <= 255 else { throw FSError(.nameTooLong, "a component is longer than 255 bytes") }
        }
        guard components.count >= 2 else { throw FSError(.invalid, "the path must be groupN/NAME at least") }
        guard components[0] == fileID.group else {
            throw FSError(.crossDevice, "the path is under \(components[0]) but the file is in \(fileID.group): a name lives in its file's group")
        }
        let second = components[1]
        if second.count == 3, second.hasPrefix("M"), second.dropFirst().allSatisfy({ $0.isHexDigit && !$0.isLowercase }) {
            throw FSError(.notPermitted, "\(components[0])/\(second) is the cluster's generated-name tree")
        }
        return Parsed(components: components, fileID: fileID)
    }
}

extension MappingStore {
    /// What ``importFile(_:size:mtime:uid:gid:mode:replace:)`` did.
    public enum ImportOutcome: Sendable, Equatable {
        /// A new name.
        case created
        /// The name already pointed at this file ID: nothing changed.
        case unchanged
        /// The name pointed at another file (the old ID; its cluster file is kept).
        case replaced(String)
    }

    /// Gives cluster file `line.fileID` the name `line.path`, in one transaction: the group's
    /// row and missing parent directories (mode 0755, `uid`/`gid`) are made, the file gets
    /// `size`, `mtime` (nanoseconds) and `mode`. An existing name is refused (EEXIST) unless
    /// `replace`, which repoints a file (every hard link of it too) and leaves its old cluster
    /// file alone. No cluster metadata is written (the file keeps what its uploader set).
    public func importFile(_ line: ImportLine.Parsed, size: Int64, mtime: Int64, uid: UInt32, gid: UInt32, mode: UInt32 = 0o644,
                           replace: Bool) throws(FSError) -> ImportOutcome {
        try transaction { (db: any MetadataConnection) throws(FSError) -> ImportOutcome in
            let now = POSIX.nowNanoseconds()
            let group = line.components[0]
            var parent = try Self.insert(db, Entry(ino: 0, parent: Self.rootIno, name: group, kind: .group, mode: 0o755, uid: 0, gid: 0,
                                                   atime: now, mtime: now, ctime: now, size: 0, fileID: group, target: nil,
                                                   state: Entry.committed), orExisting: true)
            guard parent.kind == .group else { throw FSError(.notDirectory, "\(group) is not a group") }
            var walked = group
            for name in line.components.dropFirst().dropLast() {
                walked += "/" + name
                if let row = try Self.nameRow(db, parent.ino, name) {
                    guard row.kind == .directory else { throw FSError(.notDirectory, "\(walked) exists and is not a directory") }
                    parent = row
                } else {
                    parent = try Self.insert(db, Entry(ino: 0, parent: parent.ino, name: name, kind: .directory, mode: 0o755, uid: uid, gid: gid,
                                                       atime: now, mtime: now, ctime: now, size: 0, fileID: nil, target: nil,
                                                       state: Entry.committed), orExisting: false)
                    try Self.touch(db, parent.parent, at: now)
                }
            }
            let name = line.components.last!
            let id = line.fileID.description
            if let row = try Self.nameRow(db, parent.ino, name) {
                guard let inode = try Self.resolved(db, row), inode.kind == .file, inode.state == Entry.committed else {
                    throw FSError(.exists, "\(line.path) exists and is not a file")
                }
                if inode.fileID == id { return .unchanged }
                guard replace else { throw FSError(.exists, "\(line.path) exists (pointing at \(inode.fileID ?? "nothing")); --replace repoints it") }
                let inodeNumber = row.kind == .hardLink ? row.linkIno : row.ino
                try db.run("UPDATE entries SET file_id = ?, size = ?, mtime = ?, ctime = ? WHERE ino = ?",
                           [.text(id), .int(size), .int(mtime), .int(now), .int(Int64(inodeNumber))])
                return .replaced(inode.fileID ?? "")
            }
            _ = try Self.insert(db, Entry(ino: 0, parent: parent.ino, name: name, kind: .file, mode: mode & 0o7777, uid: uid, gid: gid,
                                          atime: mtime, mtime: mtime, ctime: now, size: size, fileID: id, target: nil,
                                          state: Entry.committed), orExisting: false)
            try Self.touch(db, parent.ino, at: now)
            return .created
        }
    }
}
