#if canImport(Glibc)
import Glibc
#endif

/// OPENDIR, READDIR, RELEASEDIR: a listing is taken at OPENDIR and kept under a directory
/// handle (``HandleTable``); READDIR pages through it.
extension FDFSFileSystem {
    /// OPENDIR: `.done` for a directory users made (and a last-level subdirectory, whose
    /// layout has no children); other synthetic directories list the tracker's layout first.
    public func opendir(_ ino: UInt64) throws(FSError) -> Answer<UInt64> {
        let dir = try entry(ino)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        guard dir.kind == .directory || dir.kind == .subdirLow else {
            return .needsCluster { () async throws(FSError) in try await self.listSynthetic(dir) }
        }
        var list: [DirectoryEntry] = [
            DirectoryEntry(name: ".", ino: ino, type: UInt32(S_IFDIR)),
            DirectoryEntry(name: "..", ino: dir.parent, type: UInt32(S_IFDIR)),
        ]
        for child in try store.children(ino) { list.append(listed(child)) }
        return .done(handles.open(listing: list))
    }

    /// The listing of a synthetic directory (root, group, store path, subdirectory): its
    /// layout from the tracker, then the rows of the mapping store.
    func listSynthetic(_ dir: Entry) async throws(FSError) -> UInt64 {
        let ino = dir.ino
        var list: [DirectoryEntry] = [
            DirectoryEntry(name: ".", ino: ino, type: UInt32(S_IFDIR)),
            DirectoryEntry(name: "..", ino: dir.ino == MappingStore.rootIno ? ino : dir.parent, type: UInt32(S_IFDIR)),
        ]
        var seen = Set<String>()
        let synthetic = await syntheticChildren(dir)
        if !synthetic.isEmpty {
            let rows = try store.insertAll(synthetic.map { syntheticEntry(parent: ino, name: $0.0, kind: $0.1, path: $0.2) })
            for row in rows {
                seen.insert(row.name)
                list.append(DirectoryEntry(name: row.name, ino: row.ino, type: row.kind.isDirectory ? UInt32(S_IFDIR) : UInt32(S_IFREG)))
            }
        }
        for child in try store.children(ino) where !seen.contains(child.name) {
            // Rows of groups the tracker no longer lists are kept but not shown.
            if child.kind == .group, dir.kind == .root, !groupCache.known.isEmpty { continue }
            list.append(listed(child))
        }
        return handles.open(listing: list)
    }

    /// A mapping-store row as a directory listing entry.
    func listed(_ child: Entry) -> DirectoryEntry {
        DirectoryEntry(name: child.name, ino: child.ino, type: child.kind.typeBits)
    }

    /// Entries from `offset` on (the offset of entry i is i + 1).
    public func readdir(_ handle: UInt64, offset: Int) throws(FSError) -> ArraySlice<DirectoryEntry> {
        guard let list = handles.listing(handle) else { throw FSError(.badHandle) }
        guard offset < list.count else { return [] }
        return list[max(0, offset)...]
    }

    public func releasedir(_ handle: UInt64) {
        handles.closeListing(handle)
    }
}
