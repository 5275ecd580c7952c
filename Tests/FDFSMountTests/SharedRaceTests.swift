import FDFSMount
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two mounts (two file systems) on one PostgreSQL namespace doing conflicting things to the
/// same names at the same moment: the outcome must be one a single machine could give
/// (SEMANTICS.md, "Several mounts, one namespace"). Each test runs its race many rounds and
/// checks the invariant every round. Only meaningful on PostgreSQL (SQLite has one mount and
/// one writer): always on a fresh schema of `FDFS_TEST_POSTGRES_URL` (a test fails without it),
/// in both passes of Scripts/test, like SessionTakeoverTests.
@Suite(.serialized)
struct SharedRaceTests {
    static let rounds = 50

    /// Two file systems on one fresh schema, and the group directory's inode.
    struct Pair {
        let a: FDFSFileSystem, b: FDFSFileSystem
        let cluster: MemoryCluster
        let group: UInt64
        let dirs: [TempDir]
    }

    static func pair() async throws -> Pair {
        let location = MetadataLocation.postgres(try TestMetadata.freshPostgres())
        let cluster = MemoryCluster()
        let dirA = TempDir(), dirB = TempDir()
        let a = try await makeFS(dirA, cluster) { $0.meta = location }
        let b = try await makeFS(dirB, cluster) { $0.meta = location }
        let group = try await resolve(a, "group1").attributes.ino
        _ = try await resolve(b, "group1")
        return Pair(a: a, b: b, cluster: cluster, group: group, dirs: [dirA, dirB])
    }

    /// Creates `name` in `parent` with `bytes` and closes it (committed to the cluster).
    static func writeFile(_ fs: FDFSFileSystem, _ parent: UInt64, _ name: String, _ bytes: [UInt8],
                          flags: Int32 = O_WRONLY | O_CREAT | O_EXCL) async throws -> UInt64 {
        let (entry, open) = try await fs.create(parent: parent, name: name, mode: 0o644, flags: flags, caller: .root).value
        _ = try bytes.withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        try await fs.flush(entry.attributes.ino, handle: open.handle).value
        try await fs.release(entry.attributes.ino, handle: open.handle).value
        return entry.attributes.ino
    }

    /// The errno of `body`, 0 when it succeeded.
    static func outcome(_ body: () async throws -> Void) async -> Int32 {
        await errno(of: body) ?? 0
    }

    @Test func twoExclusiveCreatesOfOneNameOneWinsTheOtherGetsEEXIST() async throws {
        let p = try await Self.pair()
        let (a, b, group) = (p.a, p.b, p.group)
        for round in 0..<Self.rounds {
            let name = "excl-\(round)"
            async let fromA = Self.outcome { _ = try await Self.writeFile(a, group, name, Array("A\(round)".utf8)) }
            async let fromB = Self.outcome { _ = try await Self.writeFile(b, group, name, Array("B\(round)".utf8)) }
            let results = await [fromA, fromB]
            #expect(results.sorted() == [0, EEXIST], "round \(round): create on A and B gave errno \(results)")
            let winner = results[0] == 0 ? "A\(round)" : "B\(round)"
            let ino = try await resolve(p.b, "group1/\(name)").attributes.ino
            #expect(try await readAll(p.a, ino) == Array(winner.utf8), "round \(round)")
        }
        #expect(p.cluster.fileCount == Self.rounds, "one cluster file per name")
    }

    @Test func twoCreatesWithoutExclOfOneNameBothOpenTheOneFile() async throws {
        let p = try await Self.pair()
        let (a, b, group) = (p.a, p.b, p.group)
        for round in 0..<Self.rounds {
            let name = "shared-\(round)", versions = [Array("A\(round)".utf8), Array("B\(round)".utf8)]
            async let fromA = Self.writeFile(a, group, name, versions[0], flags: O_WRONLY | O_CREAT | O_TRUNC)
            async let fromB = Self.writeFile(b, group, name, versions[1], flags: O_WRONLY | O_CREAT | O_TRUNC)
            let (inoA, inoB) = try await (fromA, fromB)
            #expect(inoA == inoB, "round \(round): A and B created two files under one name")
            #expect(versions.contains(try await readAll(p.a, inoA)), "round \(round)")
            #expect(p.cluster.fileCount == round + 1, "round \(round): \(p.cluster.fileCount) cluster files for \(round + 1) names")
        }
    }

    @Test func twoRenamesOntoOneTargetLoseNothingAndDuplicateNothing() async throws {
        let p = try await Self.pair()
        let (a, b, group) = (p.a, p.b, p.group)
        for round in 0..<Self.rounds {
            let inoA = try await Self.writeFile(p.a, p.group, "from-a-\(round)", Array("A\(round)".utf8))
            let inoB = try await Self.writeFile(p.b, p.group, "from-b-\(round)", Array("B\(round)".utf8))
            let target = "target-\(round)"
            async let renameA = Self.outcome { try await a.rename(parent: group, name: "from-a-\(round)", newParent: group, newName: target, flags: 0) }
            async let renameB = Self.outcome { try await b.rename(parent: group, name: "from-b-\(round)", newParent: group, newName: target, flags: 0) }
            let results = await [renameA, renameB]
            #expect(results == [0, 0], "round \(round): renames on A and B gave errno \(results)")
            // Both renames happened, one after the other: the target names one of the two files,
            // both sources are gone, and the replaced file is gone from the cluster.
            let names = try p.a.store.children(p.group).filter { $0.name.hasSuffix("-\(round)") }
            #expect(names.map(\.name) == [target], "round \(round): names left \(names.map(\.name))")
            let survivor = try #require(names.first).ino
            #expect(survivor == inoA || survivor == inoB, "round \(round)")
            #expect(try await readAll(p.b, survivor) == Array((survivor == inoA ? "A\(round)" : "B\(round)").utf8))
            #expect(p.cluster.fileCount == round + 1, "round \(round): \(p.cluster.fileCount) cluster files for \(round + 1) names")
        }
    }

    @Test func rmdirAgainstACreateInsideLeavesNoOrphan() async throws {
        let p = try await Self.pair()
        let (a, b, group) = (p.a, p.b, p.group)
        for round in 0..<Self.rounds {
            let dir = try await p.a.mkdir(parent: p.group, name: "dir-\(round)", mode: 0o755, caller: .root).value.attributes.ino
            _ = try await resolve(p.b, "group1/dir-\(round)")
            async let removal = Self.outcome { try await a.rmdir(parent: group, name: "dir-\(round)") }
            async let creation = Self.outcome { _ = try await b.mkdir(parent: dir, name: "inside", mode: 0o755, caller: .root).value }
            let (removed, created) = await (removal, creation)
            #expect([[0, ENOENT], [ENOTEMPTY, 0]].contains([removed, created]), "round \(round): rmdir gave \(removed), mkdir inside gave \(created)")
            let left = try p.b.store.entry(dir)
            #expect((left != nil) == (created == 0), "round \(round): the directory \(left == nil ? "is gone" : "is there")")
            if created == 0 {
                #expect(try p.a.store.children(dir).map(\.name) == ["inside"], "round \(round)")
            }
        }
    }

    @Test func twoWritersOfOneFileEndWithOneVersionAndNoLeakedUpload() async throws {
        let p = try await Self.pair()
        let (a, b) = (p.a, p.b)
        let ino = try await Self.writeFile(p.a, p.group, "shared", Array("v0".utf8))
        _ = try await resolve(p.b, "group1/shared")
        for round in 0..<Self.rounds {
            let versions = [Array("A\(round)".utf8), Array("B\(round)".utf8)]
            let openA = try await p.a.open(ino, flags: O_WRONLY | O_TRUNC)
            let openB = try await p.b.open(ino, flags: O_WRONLY | O_TRUNC)
            _ = try versions[0].withUnsafeBytes { try p.a.write(openA.handle, offset: 0, bytes: $0) }
            _ = try versions[1].withUnsafeBytes { try p.b.write(openB.handle, offset: 0, bytes: $0) }
            async let closeA = Self.outcome { try await a.flush(ino, handle: openA.handle).value }
            async let closeB = Self.outcome { try await b.flush(ino, handle: openB.handle).value }
            let results = await [closeA, closeB]
            try await p.a.release(ino, handle: openA.handle).value
            try await p.b.release(ino, handle: openB.handle).value
            #expect(results == [0, 0], "round \(round): close on A and B gave errno \(results)")
            let onA = try await readAll(p.a, ino), onB = try await readAll(p.b, ino)
            #expect(versions.contains(onA) && onA == onB, "round \(round): A reads \(onA), B reads \(onB)")
            // The losing upload and the replaced version are deleted: one cluster file is left.
            #expect(p.cluster.fileCount == 1, "round \(round): \(p.cluster.fileCount) cluster files for one name")
        }
    }
}
