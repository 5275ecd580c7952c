import Foundation
import enum FDFSTestSupport.Processes
import Testing

/// Two fdfs-mount processes on one PostgreSQL namespace: what one changes reaches the other's
/// kernel at once (LISTEN/NOTIFY, not after attr_timeout), and two writers of one file on two
/// mounts end with one version and no leaked upload (SEMANTICS.md, "Several mounts, one
/// namespace").
@Suite(.serialized) struct SharedNamespaceRaceE2ETests {
    /// Waits up to `seconds` until `condition` holds, expecting that it does.
    static func within(_ seconds: Double, _ what: String, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let held = Processes.wait(for: seconds, poll: 0.05, condition)
        #expect(held, "within \(seconds) s: \(what)", sourceLocation: sourceLocation)
        return held
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func changesOnOneMountReachTheOthersKernelWellWithinAttrTimeout() throws {
        // B's kernel keeps names and attributes for 30 s: only an invalidation shows a change sooner.
        let (a, b, dirA, dirB) = try SharedNamespaceE2ETests.twoMounts(optionsB: ",attr_timeout=30")
        defer { b.stop(); a.stop() }
        guard SharedNamespaceE2ETests.seesTheDirectory(a, b, dirB) else { return }

        for round in 0..<5 {
            // Overwritten on A (a different length), closed: B reads the new bytes at its next open.
            Shell.ok("printf 'first version %d' \(round) > '\(dirA)/file'")
            guard Self.within(2, "B reads the first version", { Self.read(dirB + "/file") == "first version \(round)" }) else { return }
            Shell.ok("printf 'the second, longer version %d' \(round) > '\(dirA)/file'")
            _ = Self.within(2, "B reads the version A closed", { Self.read(dirB + "/file") == "the second, longer version \(round)" })

            // Renamed on A, after B looked the name up (its kernel holds the entry for 30 s).
            _ = Shell.run("stat '\(dirB)/renamed' '\(dirB)/file'")
            Shell.ok("mv '\(dirA)/file' '\(dirA)/renamed'")
            _ = Self.within(2, "B loses the old name", { !FileManager.default.fileExists(atPath: dirB + "/file") })
            _ = Self.within(2, "B sees the new name", { Self.read(dirB + "/renamed") == "the second, longer version \(round)" })

            // Removed on A.
            Shell.ok("rm '\(dirA)/renamed'")
            _ = Self.within(2, "B loses the removed name", { !FileManager.default.fileExists(atPath: dirB + "/renamed") })
            // Made on A (a directory: B's kernel keeps the parent's attributes too).
            Shell.ok("mkdir '\(dirA)/made-\(round)'")
            _ = Self.within(2, "B sees the directory made on A", { FileManager.default.fileExists(atPath: dirB + "/made-\(round)") })
        }
        #expect(!b.log.contains(" error "), "mount B logged errors:\n\(b.log)")
    }

    @Test func twoWritersOnTwoMountsLastCloseWinsAndTheOtherUploadIsDeleted() async throws {
        let (a, b, dirA, dirB) = try SharedNamespaceE2ETests.twoMounts()
        defer { b.stop(); a.stop() }
        Shell.ok("printf 'v0' > '\(dirA)/shared'")
        guard Self.within(10, "B sees the file", { Self.read(dirB + "/shared") == "v0" }) else { return }

        for round in 0..<20 {
            // Both write and close at the same moment.
            Shell.ok("printf 'from A %d' \(round) > '\(dirA)/shared' & printf 'from B, %d' \(round) > '\(dirB)/shared' & wait")
            let versions = ["from A \(round)", "from B, \(round)"]
            guard Self.within(2, "A and B read the same one of the two versions (round \(round))", {
                let onA = Self.read(dirA + "/shared"), onB = Self.read(dirB + "/shared")
                return onA == onB && onA.map(versions.contains) == true
            }) else { return }
        }
        // Every upload but the file's last is deleted from the cluster: nothing leaked.
        _ = Self.within(20, "every replaced or losing upload is deleted from the cluster", {
            let uploads = a.metric("fdfs_mount_uploads_total") + b.metric("fdfs_mount_uploads_total")
            let deletes = a.metric("fdfs_mount_cluster_deletes_total") + b.metric("fdfs_mount_cluster_deletes_total")
            return uploads - deletes == 1
        })
        let id = try mountedFileID(dirB + "/shared")
        let client = try TestCluster.client()
        #expect(try id == mountedFileID(dirA + "/shared"))
        let size = try await client.fileInfo(id).size
        #expect(size == Int64(Self.read(dirA + "/shared")?.utf8.count ?? -1))
        #expect(!a.log.contains(" error ") && !b.log.contains(" error "), "mount logs:\n\(a.log)\n\(b.log)")
    }
}
