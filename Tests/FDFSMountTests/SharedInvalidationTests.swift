import FDFSMount
import Foundation
import enum FDFSTestSupport.Processes
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two file systems on one PostgreSQL namespace: what one changes comes out of the other's
/// ``FDFSFileSystem/invalidations`` (LISTEN/NOTIFY), and not out of its own. Always on PostgreSQL
/// (`FDFS_TEST_POSTGRES_URL`), in both passes of Scripts/test.
@Suite(.serialized)
struct SharedInvalidationTests {
    /// Collects what a file system's stream yields.
    final class Heard: Sendable {
        let changes = Mutex<[Invalidation]>([])
        init(_ fs: FDFSFileSystem) {
            Task { [self] in
                for await change in fs.invalidations { self.changes.withLock { $0.append(change) } }
            }
        }
        func contains(_ change: Invalidation) -> Bool { changes.withLock { $0.contains(change) } }
        var all: [Invalidation] { changes.withLock { $0 } }
    }

    func heard(_ heard: Heard, _ change: Invalidation) async -> Bool {
        await Processes.wait(for: 5, poll: 0.02) { () async in heard.contains(change) }
    }

    @Test func changesOnOneFileSystemComeOutOfTheOthersInvalidations() async throws {
        let p = try await SharedRaceTests.pair()
        let onA = Heard(p.a), onB = Heard(p.b)
        // The listener connects in the background: wait until B hears a first change.
        var first = 0
        let listening = await Processes.wait(for: 10, poll: 0.05) {
            first += 1
            _ = try? await p.a.mkdir(parent: p.group, name: "probe-\(first)", mode: 0o755, caller: .root).value
            return await Processes.wait(for: 0.2, poll: 0.02) { () async in onB.contains(.entry(parent: p.group, name: "probe-\(first)")) }
        }
        try #require(listening, "B never heard A's mkdir")

        let ino = try await SharedRaceTests.writeFile(p.a, p.group, "file", Array("one".utf8))
        #expect(await heard(onB, .entry(parent: p.group, name: "file")), "a create")
        #expect(await heard(onB, .inode(ino)), "a commit")
        try await p.a.rename(parent: p.group, name: "file", newParent: p.group, newName: "renamed", flags: 0)
        #expect(await heard(onB, .entry(parent: p.group, name: "renamed")), "a rename's new name")
        try await p.a.unlink(parent: p.group, name: "renamed")
        // B's own change comes out of A's stream, and not out of B's.
        _ = try await p.b.mkdir(parent: p.group, name: "from-b", mode: 0o755, caller: .root).value
        #expect(await heard(onA, .entry(parent: p.group, name: "from-b")), "B's mkdir on A")
        #expect(!onB.contains(.entry(parent: p.group, name: "from-b")), "B heard its own mkdir: \(onB.all)")
        #expect(!onA.contains(.entry(parent: p.group, name: "file")), "A heard its own create")
    }
}
