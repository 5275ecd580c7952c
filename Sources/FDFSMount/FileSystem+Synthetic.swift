import FDFSClient
import FDFSProtocol

/// The synthetic namespace: groups (from the tracker), store paths and the two levels of
/// subdirectories, named as the cluster's layout says, and rows for generated names.
extension FDFSFileSystem {
    // MARK: Groups

    /// Groups from the tracker (cached for 30 s; the last known list when it cannot be asked).
    public func groups(refresh: Bool = false) async -> [String: GroupInfo] {
        await groupCache.groups(refresh: refresh)
    }
    func group(_ name: String) async -> GroupInfo? {
        await groupCache.group(name)
    }

    /// Names of the synthetic children of a synthetic directory.
    func syntheticChildren(_ entry: Entry) async -> [(String, EntryKind, String)] {
        let path = entry.fileID ?? ""
        switch entry.kind {
        case .root:
            return await groups().keys.sorted().map { ($0, .group, $0) }
        case .group:
            guard let info = await group(entry.name) else { return [] }
            return (0..<max(0, min(info.storePathCount, 256))).map { i in
                let name = "M" + FileID.hex(UInt8(i))
                return (name, .storePath, "\(path)/\(name)")
            }
        case .storePath, .subdirHigh:
            let groupName = String(path.split(separator: "/").first ?? "")
            guard let info = await group(groupName) else { return [] }
            let kind: EntryKind = entry.kind == .storePath ? .subdirHigh : .subdirLow
            return (0..<max(0, min(info.subdirCount, 256))).map { i in
                let name = FileID.hex(UInt8(i))
                return (name, kind, "\(path)/\(name)")
            }
        default:
            return []
        }
    }

    /// Is `name` a synthetic child of `entry`? Returns its kind and path.
    func syntheticChild(_ entry: Entry, _ name: String) async -> (EntryKind, String)? {
        let path = entry.fileID ?? ""
        func hexIndex(_ text: Substring) -> Int? {
            guard text.count == 2, text.allSatisfy({ ("0"..."9").contains($0) || ("A"..."F").contains($0) }) else { return nil }
            return Int(text, radix: 16)
        }
        switch entry.kind {
        case .root:
            guard (try? FileID.validateGroupName(name)) != nil, await group(name) != nil else { return nil }
            return (.group, name)
        case .group:
            guard name.count == 3, name.hasPrefix("M"), let i = hexIndex(name.dropFirst()), let info = await group(entry.name), i < info.storePathCount else { return nil }
            return (.storePath, "\(path)/\(name)")
        case .storePath, .subdirHigh:
            let groupName = String(path.split(separator: "/").first ?? "")
            guard let i = hexIndex(Substring(name)), let info = await group(groupName), i < info.subdirCount else { return nil }
            return (entry.kind == .storePath ? .subdirHigh : .subdirLow, "\(path)/\(name)")
        default:
            return nil
        }
    }

    func syntheticEntry(parent: UInt64, name: String, kind: EntryKind, path: String) -> Entry {
        Entry(ino: 0, parent: parent, name: name, kind: kind, mode: 0o755, uid: options.uid, gid: options.gid,
              atime: startTime, mtime: startTime, ctime: startTime, size: 0, fileID: path, target: nil, state: Entry.committed)
    }

    /// The generated-name row for a cluster file.
    func generatedEntry(parent: UInt64, id: FileID, size: Int64, time: Int64) -> Entry {
        let ns = time * 1_000_000_000
        return Entry(ino: 0, parent: parent, name: id.name, kind: .generated, mode: 0o444, uid: options.uid, gid: options.gid,
                     atime: ns, mtime: ns, ctime: ns, size: size, fileID: id.description, target: nil, state: Entry.committed)
    }

    /// Makes sure the synthetic directories of `id` (group/Mxx/HH/HH) have rows; returns the
    /// HH/HH directory's inode.
    /// Usually they all exist: one query finds them (``MappingStore/syntheticChain(_:)``).
    func materializeDirectory(of id: FileID) throws(FSError) -> UInt64 {
        var parent = MappingStore.rootIno
        var path = ""
        let parts: [(String, EntryKind)] = [
            (id.group, .group), ("M" + FileID.hex(UInt8(id.storePathIndex)), .storePath),
            (FileID.hex(id.highDirectory), .subdirHigh), (FileID.hex(id.lowDirectory), .subdirLow),
        ]
        if let ino = try store.syntheticChain(parts) { return ino }
        for (name, kind) in parts {
            path = path.isEmpty ? name : "\(path)/\(name)"
            let row = try store.insert(syntheticEntry(parent: parent, name: name, kind: kind, path: path), orExisting: true)
            guard row.kind == kind else { throw FSError(.exists, "\(path) is a user entry") }
            parent = row.ino
        }
        return parent
    }
}
