import Foundation
import enum FDFSTestSupport.Processes
import Testing

/// Two fdfs-mount processes (two state directories, one cluster) on one PostgreSQL database:
/// what one does to names and content, the other sees (SEMANTICS.md, "Several mounts, one
/// namespace"): content after close, names within attr_timeout.
@Suite(.serialized) struct SharedNamespaceE2ETests {
    /// `meta=` for a fresh schema in the test database (FDFS_TEST_POSTGRES_URL, which
    /// Scripts/test sets after starting a throw-away server).
    static func sharedMetaOption() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FDFS_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw HarnessError("FDFS_TEST_POSTGRES_URL is not set: this test needs PostgreSQL (Scripts/test starts a throw-away server)")
        }
        let schema = "e2e_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "meta=\(url)\(url.contains("?") ? "&" : "?")schema=\(schema)"
    }

    /// Waits (up to 10 s: attr_timeout is 1 s) until `condition` holds on mount B.
    static func eventually(_ what: String, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        SharedNamespaceRaceE2ETests.within(10, "mount B: \(what)", condition, sourceLocation: sourceLocation)
    }

    /// Waits until mount B sees the directory `twoMounts` made through A. On failure it records
    /// what B answered and both mounts' logs: this wait failed once under heavy load and was
    /// never explained, so the next failure should explain itself.
    static func seesTheDirectory(_ a: TestMount, _ b: TestMount, _ dirB: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if SharedNamespaceRaceE2ETests.within(10, "mount B sees the directory made on A", { FileManager.default.fileExists(atPath: dirB) }, sourceLocation: sourceLocation) {
            return true
        }
        let parent = (dirB as NSString).deletingLastPathComponent
        let stat = Shell.run("stat '\(dirB)'"), listing = Shell.run("ls -la '\(parent)'")
        Issue.record("""
            stat on B: \(stat.stdout)\(stat.stderr)
            ls -la \(parent) on B: \(listing.stdout)\(listing.stderr)
            mount B log:
            \(b.log.suffix(4000))
            mount A log:
            \(a.log.suffix(4000))
            """, sourceLocation: sourceLocation)
        return false
    }

    /// Two mounts on one fresh schema (B with `optionsB` added to its options) and a fresh
    /// directory made through A: its path in A and in B.
    static func twoMounts(optionsB: String = "") throws -> (a: TestMount, b: TestMount, dirA: String, dirB: String) {
        let meta = try sharedMetaOption()
        let a = try TestMount(options: meta)
        let b = try TestMount(options: meta + optionsB)
        let dirA = a.workdir()
        return (a, b, dirA, b.mountpoint + dirA.dropFirst(a.mountpoint.count))
    }

    @Test func twoMountsShareOneNamespace() throws {
        let (a, b, dirA, dirB) = try Self.twoMounts()
        defer { b.stop(); a.stop() }
        guard Self.seesTheDirectory(a, b, dirB) else { return }

        // A file copied into A, closed: listed and read byte-identical on B.
        let local = localFile(700_000, in: a.root)
        Shell.ok("cp '\(local.path)' '\(dirA)/copied.bin'")
        guard Self.eventually("lists copied.bin", { Shell.run("ls '\(dirB)'").stdout.split(separator: "\n").contains("copied.bin") }) else { return }
        #expect(Shell.ok("stat -c %s '\(dirB)/copied.bin'").trimmingCharacters(in: .whitespacesAndNewlines) == "700000")
        #expect(sha256(dirB + "/copied.bin") == sha256(local.path))
        #expect(try mountedFileID(dirB + "/copied.bin") == mountedFileID(dirA + "/copied.bin"))

        // A file written on B is read on A (the namespace is shared both ways).
        Shell.ok("printf 'from B' > '\(dirB)/from-b.txt'")
        guard Self.eventually("'s file is seen on A", { (try? String(contentsOfFile: dirA + "/from-b.txt", encoding: .utf8)) == "from B" }) else { return }

        // A rename on A: B sees the new name and loses the old one.
        Shell.ok("mv '\(dirA)/copied.bin' '\(dirA)/renamed.bin'")
        _ = Self.eventually("loses copied.bin after the rename", { !FileManager.default.fileExists(atPath: dirB + "/copied.bin") })
        _ = Self.eventually("sees renamed.bin", { FileManager.default.fileExists(atPath: dirB + "/renamed.bin") })
        #expect(sha256(dirB + "/renamed.bin") == sha256(local.path))
        #expect(Shell.run("ls '\(dirB)'").stdout.split(separator: "\n").sorted() == ["from-b.txt", "renamed.bin"])

        // An unlink on A: gone on B, name and listing.
        Shell.ok("rm '\(dirA)/renamed.bin'")
        _ = Self.eventually("loses renamed.bin after the unlink", { !FileManager.default.fileExists(atPath: dirB + "/renamed.bin") })
        #expect(Shell.run("ls '\(dirB)'").stdout.split(separator: "\n") == ["from-b.txt"])
        #expect(!b.log.contains(" error "), "mount B logged errors:\n\(b.log)")
    }

    /// A tree copied with `cp -a` into A is `diff -r`-clean on B, and `rsync -a` of a tree into
    /// A, then of the same tree into B, finds nothing to transfer on B (names, sizes and times
    /// written through A are what B reports).
    @Test func aTreeCopiedIntoOneMountIsWholeOnTheOtherAndRsyncThereTransfersNothing() throws {
        let (a, b, dirA, dirB) = try Self.twoMounts()
        defer { b.stop(); a.stop() }

        let tree = a.root + "/tree"
        Shell.ok("""
            mkdir -p '\(tree)/d1/d2' '\(tree)/empty' && head -c 300000 /dev/urandom > '\(tree)/big.bin' && \
            printf x > '\(tree)/d1/one.txt' && head -c 70000 /dev/urandom > '\(tree)/d1/d2/mid.bin' && \
            : > '\(tree)/zero' && ln -s d1/one.txt '\(tree)/link' && chmod 640 '\(tree)/d1/one.txt' && \
            touch -h -d '2020-01-02 03:04:05' '\(tree)/big.bin' '\(tree)/link' '\(tree)/d1/d2'
            """)

        Shell.ok("cp -a '\(tree)' '\(dirA)/copy'")
        guard Self.eventually("sees the copied tree", { FileManager.default.fileExists(atPath: dirB + "/copy/d1/d2/mid.bin") }) else { return }
        let diff = Shell.run("diff -r '\(tree)' '\(dirB)/copy'")
        #expect(diff.status == 0, "diff -r of the tree and B's copy:\n\(diff.stdout)\(diff.stderr)")
        #expect(Shell.ok("readlink '\(dirB)/copy/link'").trimmingCharacters(in: .whitespacesAndNewlines) == "d1/one.txt")
        #expect(Shell.ok("stat -c %a '\(dirB)/copy/d1/one.txt'").trimmingCharacters(in: .whitespacesAndNewlines) == "640")

        Shell.ok("rsync -a '\(tree)/' '\(dirA)/synced/'")
        guard Self.eventually("sees the rsynced tree", { FileManager.default.fileExists(atPath: dirB + "/synced/d1/d2/mid.bin") }) else { return }
        let again = Shell.run("rsync -a --stats '\(tree)/' '\(dirB)/synced/'")
        #expect(again.status == 0, "rsync into B: \(again.stderr)")
        #expect(again.stdout.contains("Number of regular files transferred: 0"), "rsync into B transferred files that A had written:\n\(again.stdout)")
        #expect(!b.log.contains(" error "), "mount B logged errors:\n\(b.log)")
    }
}
