import FDFSMount
import struct FDFSTestSupport.TestPostgresServer
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An unreachable PostgreSQL: operations that need it fail with EIO after at most
/// `meta_timeout=`, and the mount reconnects by itself once the server is back. Runs in both
/// passes of Scripts/test (it always takes its namespace from `FDFS_TEST_POSTGRES_URL`);
/// serialised, since it stops the server every other PostgreSQL test uses.
@Suite(.serialized) struct MetadataOutageTests {
    /// Waits until `body` succeeds, for at most `seconds`.
    func eventually(_ seconds: Double, _ body: () async throws -> Void) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while true {
            do { return try await body() } catch {
                if ContinuousClock.now > deadline { throw error }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test func aStoppedServerGivesEIOAndTheMountReconnects() async throws {
        let server = try TestPostgresServer()
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let dir = TempDir()
        let fs = try await makeFS(dir, MemoryCluster()) { $0.meta = location; $0.metaTimeout = 2; $0.attrTimeout = 0 }
        let group = try await resolve(fs, "group1").attributes.ino
        let kept = try await writeFile(fs, parent: group, "before", [1, 2, 3])

        try server.stop()
        var restarted = false
        defer { if !restarted { try? server.start() } }
        let started = ContinuousClock.now
        for name in ["before", "missing"] {
            #expect(await errno { _ = try await fs.lookup(parent: group, name: name).value } == EIO)
        }
        #expect(await errno { _ = try await fs.create(parent: group, name: "during", mode: 0o644, flags: O_WRONLY, caller: .root).value } == EIO)
        #expect(ContinuousClock.now - started < .seconds(6), "EIO came after \(ContinuousClock.now - started)")

        try server.start()
        restarted = true
        try await eventually(10) { _ = try await fs.lookup(parent: group, name: "before").value }
        #expect(try await fs.lookup(parent: group, name: "before").value.attributes.ino == kept)
        #expect(try await readAll(fs, kept) == [1, 2, 3])
        try await writeFile(fs, parent: group, "after", [4])
        #expect(try await readAll(fs, try await fs.lookup(parent: group, name: "after").value.attributes.ino) == [4])
    }

    @Test func aServerThatDoesNotAnswerGivesEIOWithinTheTimeout() async throws {
        let server = try TestPostgresServer()
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let store = try MappingStore(location: location, stateDir: "", timeout: 1)
        #expect(try store.entry(MappingStore.rootIno) != nil)

        try server.signal(SIGSTOP)
        var resumed = false
        defer { if !resumed { try? server.signal(SIGCONT) } }
        for _ in 0..<3 {
            let started = ContinuousClock.now
            #expect(await errno { _ = try store.entry(MappingStore.rootIno) } == EIO)
            #expect(ContinuousClock.now - started < .seconds(3), "EIO came after \(ContinuousClock.now - started)")
        }
        try server.signal(SIGCONT)
        resumed = true
        try await eventually(10) { _ = try store.entry(MappingStore.rootIno) }
        #expect(try store.entry(MappingStore.rootIno)?.kind == .root)
    }
}
