@testable import FDFSMount
import Testing

/// ``MetadataCache``: names answered through their inode's row, targeted forgetting.
@Suite struct MetadataCacheTests {
    static func row(_ ino: UInt64, parent: UInt64, _ name: String) -> Entry {
        Entry(ino: ino, parent: parent, name: name, kind: .file, mode: 0o644, uid: 0, gid: 0, atime: 0, mtime: 0, ctime: 0,
              size: 0, fileID: nil, target: nil, state: Entry.committed)
    }

    @Test func aNameIsAnsweredOnlyWhileItsInodeIsCached() {
        let cache = MetadataCache(ttl: 60)
        let dir = Self.row(2, parent: 1, "d"), file = Self.row(5, parent: 2, "f")
        cache.fill(cache.generation, inodes: [dir, file], names: [(1, "d", dir), (2, "f", file), (2, "missing", nil)], links: [(5, 0), (2, 3)])
        #expect(cache.child(2, "f") == .some(file))
        #expect(cache.child(2, "missing") == .some(nil))
        #expect(cache.links(2) == 3)
        // A hard link's name shows the inode with the link's parent and name.
        cache.fill(cache.generation, inodes: [file], names: [(1, "link", Self.row(5, parent: 1, "link"))])
        #expect(cache.child(1, "link")??.parent == 1 && cache.child(1, "link")??.name == "link")
        // Forgetting the inode forgets every name of it and its link count.
        cache.forget(inodes: [5])
        #expect(cache.child(2, "f") == nil && cache.child(1, "link") == nil && cache.links(5) == nil)
        #expect(cache.child(1, "d") == .some(dir) && cache.links(2) == 3)
        // Forgetting a name forgets the inode it stood for.
        cache.forget(names: [(1, "d")])
        #expect(cache.entry(2) == nil && cache.links(2) == nil && cache.child(2, "missing") == .some(nil))
    }

    @Test func aFillThatBeganBeforeAForgetIsDropped() {
        let cache = MetadataCache(ttl: 60)
        let generation = cache.generation
        cache.forget(names: [(2, "f")])
        cache.fill(generation, inodes: [Self.row(5, parent: 2, "f")], names: [(2, "f", Self.row(5, parent: 2, "f"))])
        #expect(cache.child(2, "f") == nil && cache.entry(5) == nil)
    }
}
