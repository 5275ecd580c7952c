import FDFSClient
import FDFSMount
import FDFSProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hard links, special files, link counts and truncation limits in the core (no kernel).
@Suite struct HardLinkTests {
    func fileID(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> FileID {
        try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
    }

    func rewrite(_ fs: FDFSFileSystem, _ ino: UInt64, _ bytes: [UInt8]) async throws {
        let open = try await fs.open(ino, flags: O_WRONLY | O_TRUNC)
        _ = try bytes.withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
    }

    @Test func twoNamesShareOneInodeAndTheClusterFileGoesWithTheLast() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let sub = try await fs.mkdir(parent: group, name: "sub", mode: 0o755, caller: .root).value.attributes.ino
        let ino = try await writeFile(fs, parent: group, "a", [1, 2, 3])
        let id = try await fileID(fs, ino)
        let before = try fs.getattr(ino).attributes.ctime
        let linked = try await fs.link(ino, newParent: sub, newName: "b").attributes
        #expect(linked.ino == ino && linked.nlink == 2 && linked.ctime > before)
        #expect(try await resolve(fs, "group1/sub/b").attributes.ino == ino)
        #expect(try await resolve(fs, "group1/a").attributes.nlink == 2)
        #expect(try fs.store.exportAll().map(\.path) == ["group1/a", "group1/sub/b"])
        // A rewrite through one name is read through the other, and the old file goes.
        try await rewrite(fs, try await resolve(fs, "group1/sub/b").attributes.ino, [9, 8, 7, 6])
        #expect(try await readAll(fs, try await resolve(fs, "group1/a").attributes.ino) == [9, 8, 7, 6])
        let newID = try await fileID(fs, ino)
        #expect(newID != id && cluster.bytes(id) == nil)
        // Unlinking the first name leaves the link working; its ctime moves.
        let ctime = try fs.getattr(ino).attributes.ctime
        try await fs.unlink(parent: group, name: "a")
        let left = try await resolve(fs, "group1/sub/b").attributes
        #expect(left.ino == ino && left.nlink == 1 && left.ctime > ctime)
        #expect(cluster.bytes(newID) == [9, 8, 7, 6])
        #expect(try await readAll(fs, ino) == [9, 8, 7, 6])
        // Renaming the last name keeps it; unlinking it deletes the cluster file.
        try await fs.rename(parent: sub, name: "b", newParent: group, newName: "c", flags: 0)
        #expect(try await readAll(fs, try await resolve(fs, "group1/c").attributes.ino) == [9, 8, 7, 6])
        try await fs.unlink(parent: group, name: "c")
        #expect(cluster.bytes(newID) == nil)
    }

    @Test func aRenameOntoOneOfSeveralNamesKeepsTheInode() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "a", [1])
        _ = try await fs.link(ino, newParent: group, newName: "b")
        let id = try await fileID(fs, ino)
        // Renaming one name onto another of the same inode changes nothing.
        try await fs.rename(parent: group, name: "a", newParent: group, newName: "b", flags: 0)
        #expect(try await resolve(fs, "group1/a").attributes.nlink == 2)
        // Replacing one name by another file leaves the other name and the cluster file.
        let other = try await writeFile(fs, parent: group, "other", [2])
        try await fs.rename(parent: group, name: "other", newParent: group, newName: "a", flags: 0)
        #expect(try await resolve(fs, "group1/a").attributes.ino == other)
        let b = try await resolve(fs, "group1/b").attributes
        #expect(b.ino == ino && b.nlink == 1)
        #expect(cluster.bytes(id) == [1])
    }

    @Test func directoriesGeneratedNamesAndOtherGroupsGetNoLinks() async throws {
        let dir = TempDir()
        let cluster = MemoryCluster(groups: [GroupInfo(name: "group1", storePathCount: 1, subdirCount: 256, totalMB: 1000, freeMB: 500),
                                             GroupInfo(name: "group2", storePathCount: 1, subdirCount: 256, totalMB: 1000, freeMB: 500)])
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let group2 = try await resolve(fs, "group2").attributes.ino
        let sub = try await fs.mkdir(parent: group, name: "sub", mode: 0o755, caller: .root).value.attributes.ino
        #expect(await errno { _ = try await fs.link(sub, newParent: group, newName: "d") } == EPERM)
        let file = try await writeFile(fs, parent: group, "f", [1])
        #expect(await errno { _ = try await fs.link(file, newParent: group2, newName: "f") } == EXDEV)
        #expect(await errno { _ = try await fs.link(file, newParent: group, newName: "sub") } == EEXIST)
        let generated = try await resolve(fs, "group1/" + (try await fileID(fs, file)).remoteFilename).attributes.ino
        #expect(await errno { _ = try await fs.link(generated, newParent: group, newName: "g") } == EPERM)
    }

    @Test func aDirectoryCountsItsSubdirectories() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let top = try await fs.mkdir(parent: group, name: "top", mode: 0o755, caller: .root).value.attributes.ino
        #expect(try fs.getattr(top).attributes.nlink == 2)
        _ = try await fs.mkdir(parent: top, name: "a", mode: 0o755, caller: .root).value
        _ = try await fs.mkdir(parent: top, name: "b", mode: 0o755, caller: .root).value
        _ = try await writeFile(fs, parent: top, "f", [1])
        #expect(try fs.getattr(top).attributes.nlink == 4)
        try await fs.rename(parent: top, name: "a", newParent: group, newName: "a", flags: 0)
        #expect(try fs.getattr(top).attributes.nlink == 3)
        try await fs.rmdir(parent: top, name: "b")
        #expect(try fs.getattr(top).attributes.nlink == 2)
        // group1 has 2 store paths (M00, M01) and the user directories top and a.
        #expect(try fs.getattr(group).attributes.nlink == 6)
    }

    @Test func specialFilesAreInodesWithoutAClusterFile() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let fifo = try await fs.mknod(parent: group, name: "fifo", mode: UInt32(S_IFIFO) | 0o640, rdev: 0, caller: .root).attributes
        #expect(fifo.mode == UInt32(S_IFIFO) | 0o640 && fifo.nlink == 1)
        let socket = try await fs.mknod(parent: group, name: "sock", mode: UInt32(S_IFSOCK) | 0o755, rdev: 0, caller: .root).attributes
        #expect(socket.mode & UInt32(S_IFMT) == UInt32(S_IFSOCK))
        let device = try await fs.mknod(parent: group, name: "null", mode: UInt32(S_IFCHR) | 0o666, rdev: 0x0103, caller: .root).attributes
        #expect(device.mode == UInt32(S_IFCHR) | 0o666 && device.rdev == 0x0103)
        #expect(try await resolve(fs, "group1/null").attributes.rdev == 0x0103)
        #expect(await errno { _ = try await fs.mknod(parent: group, name: "fifo", mode: UInt32(S_IFIFO) | 0o644, rdev: 0, caller: .root) } == EEXIST)
        // mknod of a regular file makes an empty, committed file (metadata only: no upload).
        let regular = try await fs.mknod(parent: group, name: "plain", mode: UInt32(S_IFREG) | 0o600, rdev: 0, caller: .root).attributes
        #expect(regular.mode == UInt32(S_IFREG) | 0o600 && regular.size == 0)
        #expect(cluster.count("upload") == 0)
        // Special files can be linked, renamed and removed, and are listed with their type.
        _ = try await fs.link(fifo.ino, newParent: group, newName: "fifo2")
        #expect(try fs.getattr(fifo.ino).attributes.nlink == 2)
        let handle = try await fs.opendir(group).value
        let types = Dictionary(try fs.readdir(handle, offset: 0).map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        fs.releasedir(handle)
        #expect(types["fifo2"] == UInt32(S_IFIFO) && types["sock"] == UInt32(S_IFSOCK) && types["null"] == UInt32(S_IFCHR))
        try await fs.rename(parent: group, name: "sock", newParent: group, newName: "sock2", flags: 0)
        try await fs.unlink(parent: group, name: "fifo")
        try await fs.unlink(parent: group, name: "fifo2")
        try await fs.unlink(parent: group, name: "null")
        #expect(await errno { _ = try await fs.lookup(parent: group, name: "fifo2").value } == ENOENT)
        #expect(cluster.count("upload") == 0)
    }

    @Test func aTruncationBeyondTheSpoolIsEFBIGAndOneThatDoesNotFitNowIsENOSPC() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.spoolSize = 1 << 20 }
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "f", [1])
        #expect(await errno { _ = try await fs.setattr(ino, changes: AttributeChanges(size: 999_999_999_999_999)).value } == EFBIG)
        let open = try await fs.open(ino, flags: O_WRONLY)
        _ = try await fs.setattr(ino, changes: AttributeChanges(size: 700_000)).value
        let other = try await writeFile(fs, parent: group, "g", [1])
        #expect(await errno { _ = try await fs.setattr(other, changes: AttributeChanges(size: 700_000)).value } == ENOSPC)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(try fs.getattr(ino).attributes.size == 700_000)
    }
}
