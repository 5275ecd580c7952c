import FDFSMount
import FDFSProtocol
import Foundation
import enum FDFSTestSupport.Processes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mounts on one PostgreSQL namespace: the journal of a mount that stops heartbeating is taken
/// over by exactly one live mount, which finishes it as crash recovery would; and a file open
/// on one mount is not deleted from the cluster when another removes its last name. Always on
/// PostgreSQL (`FDFS_TEST_POSTGRES_URL`), in both passes of Scripts/test.
@Suite struct SessionTakeoverTests {
    static func write(_ fs: FDFSFileSystem, _ handle: UInt64, _ bytes: [UInt8]) throws {
        _ = try bytes.withUnsafeBytes { try fs.write(handle, offset: 0, bytes: $0) }
    }

    @Test func aDeadSessionIsTakenOverOnceByOneOfTwoRacingMounts() async throws {
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let cluster = MemoryCluster()
        let dirA = TempDir(), dirB = TempDir(), dirC = TempDir()
        let a = try await makeFS(dirA, cluster) { $0.meta = location }
        let group = try await resolve(a, "group1").attributes.ino

        // A committed file, then unlinked on A while A has it open: detached, A's.
        let (kept, keptOpen) = try await a.create(parent: group, name: "kept", mode: 0o644, flags: O_WRONLY, caller: .root).value
        try Self.write(a, keptOpen.handle, [1, 2, 3])
        try await a.flush(kept.attributes.ino, handle: keptOpen.handle).value
        try await a.release(kept.attributes.ino, handle: keptOpen.handle).value
        let keptID = try #require(try a.store.entry(kept.attributes.ino)?.fileID)
        _ = try await a.open(kept.attributes.ino, flags: O_RDONLY)
        try await a.unlink(parent: group, name: "kept")
        // A committed file whose metadata write is due when A dies.
        let (meta, metaOpen) = try await a.create(parent: group, name: "meta", mode: 0o644, flags: O_WRONLY, caller: .root).value
        try Self.write(a, metaOpen.handle, [5])
        try await a.flush(meta.attributes.ino, handle: metaOpen.handle).value
        try await a.release(meta.attributes.ino, handle: metaOpen.handle).value
        let metaID = try #require(try a.store.entry(meta.attributes.ino)?.fileID)
        // Names created and never closed; one with an upload whose file ID was recorded, one
        // whose bytes were only in A's spool.
        let (unclosed, unclosedOpen) = try await a.create(parent: group, name: "unclosed", mode: 0o644, flags: O_WRONLY, caller: .root).value
        try Self.write(a, unclosedOpen.handle, [9])
        let (uploaded, _) = try await a.create(parent: group, name: "uploaded", mode: 0o644, flags: O_WRONLY, caller: .root).value
        let (lost, _) = try await a.create(parent: group, name: "lost", mode: 0o644, flags: O_WRONLY, caller: .root).value

        // A dies (no more heartbeats, the session stays registered) after journaling: the
        // upload answered with an ID, an upload in flight, a streamed appender file, a due
        // metadata write.
        a.haltKeepingSession()
        let uploadedID = cluster.put([4, 5, 6])
        let pending = try a.store.beginUpload(ino: uploaded.attributes.ino, spool: "/nonexistent/a-spool/1", size: 3, oldFileID: nil, inPlace: false)
        try a.store.uploaded(pending: pending, fileID: uploadedID.description)
        _ = try a.store.beginUpload(ino: lost.attributes.ino, spool: "/nonexistent/a-spool/2", size: 7, oldFileID: nil, inPlace: false)
        let streamID = cluster.put([7, 7], appender: true)
        try a.store.streamStarted(streamID.description, ino: unclosed.attributes.ino)
        cluster.state.withLock { _ = $0.metadata.removeValue(forKey: metaID) }
        try a.store.markMetadataDue(metaID, ino: meta.attributes.ino)
        let deletesBefore = cluster.count("delete")

        // Two live mounts; A's heartbeat goes stale; both race to take it over.
        let b = try await makeFS(dirB, cluster) { $0.meta = location }
        let c = try await makeFS(dirC, cluster) { $0.meta = location }
        #expect(b.sessionsTakenOver + c.sessionsTakenOver == 0, "A was alive when B and C started")
        #expect(try a.store.heartbeat(a.sessionID, now: 0))
        let claims = await withTaskGroup(of: Int.self) { tasks in
            for fs in [b, c, b, c, b, c] { tasks.addTask { await fs.takeOverDeadSessions() } }
            return await tasks.reduce(0, +)
        }
        #expect(b.sessionsTakenOver + c.sessionsTakenOver == 1, "B took over \(b.sessionsTakenOver), C \(c.sessionsTakenOver)")
        #expect(claims <= 1)

        // Each action once: the recorded upload is adopted, the names never closed go, the
        // appender file and the detached file are deleted from the cluster (one DELETE each),
        // the due metadata is written.
        let adopted = try await resolve(b, "group1/uploaded")
        #expect(try b.store.entry(adopted.attributes.ino)?.fileID == uploadedID.description)
        #expect(try await readAll(c, adopted.attributes.ino) == [4, 5, 6])
        for name in ["unclosed", "lost"] {
            #expect(await errno { _ = try await resolve(c, "group1/\(name)") } == ENOENT, "\(name) is still there")
        }
        #expect(cluster.bytes(streamID) == nil, "the streamed appender file was not deleted")
        #expect(cluster.bytes(try FileID(keptID)) == nil, "the file unlinked while open on A was not deleted")
        #expect(cluster.count("delete") - deletesBefore == 2, "\(cluster.count("delete") - deletesBefore) DELETEs")
        #expect(try b.store.detachedEntries().isEmpty)
        #expect(try b.store.pendingUploads().isEmpty)
        #expect(try b.store.streamCount() == 0)
        #expect(try b.store.abandonedProvisional().isEmpty)
        let written = try await Processes.wait(for: 10) { cluster.meta(try FileID(metaID)) != nil }
        #expect(written, "the metadata write due on A was not done")
        #expect(try await readAll(b, meta.attributes.ino) == [5])
        #expect(b.sessionsTakenOver + c.sessionsTakenOver == 1)
    }

    @Test func aFileOpenOnOneMountOutlivesItsLastNameOnAnother() async throws {
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let cluster = MemoryCluster()
        let dirA = TempDir(), dirB = TempDir()
        let a = try await makeFS(dirA, cluster) { $0.meta = location }
        let b = try await makeFS(dirB, cluster) { $0.meta = location }
        let group = try await resolve(a, "group1").attributes.ino
        let (file, open) = try await a.create(parent: group, name: "shared", mode: 0o644, flags: O_WRONLY, caller: .root).value
        try Self.write(a, open.handle, [1, 2, 3, 4])
        try await a.flush(file.attributes.ino, handle: open.handle).value
        try await a.release(file.attributes.ino, handle: open.handle).value
        let id = try FileID(try #require(try a.store.entry(file.attributes.ino)?.fileID))

        let onB = try await resolve(b, "group1/shared").attributes.ino
        let reading = try await b.open(onB, flags: O_RDONLY)
        try await a.unlink(parent: group, name: "shared")
        await a.background()
        #expect(cluster.bytes(id) != nil, "deleted while open on B")
        #expect(Array(try await b.read(reading.handle, offset: 0, size: 100).bytes) == [1, 2, 3, 4])

        try await b.release(onB, handle: reading.handle).value
        await a.background()
        #expect(cluster.bytes(id) == nil, "not deleted after B closed it")
        #expect(try a.store.deletions().isEmpty)
    }
}
