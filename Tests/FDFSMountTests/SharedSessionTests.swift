import FDFSMount
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several mounts on one PostgreSQL namespace: crash recovery acts on the whole journal, so a
/// mount that starts while another is alive must leave that mount's work in progress alone
/// (it used to remove a file the other mount had created and was still writing). Runs in both
/// passes of Scripts/test: it always takes its namespace from `FDFS_TEST_POSTGRES_URL`.
@Suite struct SharedSessionTests {
    @Test func aMountStartingBesideALiveOneLeavesItsWorkInProgressAlone() async throws {
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let cluster = MemoryCluster()
        let dirA = TempDir(), dirB = TempDir(), dirC = TempDir()
        let a = try await makeFS(dirA, cluster) { $0.meta = location }
        let group = try await resolve(a, "group1").attributes.ino
        let (entry, open) = try await a.create(parent: group, name: "in-progress", mode: 0o644, flags: O_WRONLY, caller: .root).value
        _ = try [UInt8]([1, 2, 3]).withUnsafeBytes { try a.write(open.handle, offset: 0, bytes: $0) }

        let b = try await makeFS(dirB, cluster) { $0.meta = location }
        #expect(try await resolve(b, "group1/in-progress").attributes.ino == entry.attributes.ino)
        try await a.flush(entry.attributes.ino, handle: open.handle).value
        try await a.release(entry.attributes.ino, handle: open.handle).value
        let fromB = try await readAll(b, entry.attributes.ino)
        #expect(fromB == [1, 2, 3], "B read \(fromB)")

        // A leaves a file it never closed and goes away; so does B. A mount that then starts
        // alone recovers as after a crash: the unclosed name goes.
        let (_, unclosed) = try await a.create(parent: group, name: "never-closed", mode: 0o644, flags: O_WRONLY, caller: .root).value
        _ = try [UInt8]([9]).withUnsafeBytes { try a.write(unclosed.handle, offset: 0, bytes: $0) }
        a.stop()
        b.stop()
        let c = try await makeFS(dirC, cluster) { $0.meta = location }
        #expect(await errno { _ = try await resolve(c, "group1/never-closed") } == ENOENT)
        #expect(try await readAll(c, entry.attributes.ino) == [1, 2, 3])
    }
}
