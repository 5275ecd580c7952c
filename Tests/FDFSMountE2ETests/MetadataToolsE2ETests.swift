import Foundation
import enum FDFSTestSupport.Processes
import struct FDFSTestSupport.ProcessResult
import Testing

/// The namespace tools against real processes: `fdfs-mount meta migrate` from a mount's SQLite
/// store into PostgreSQL (FDFS_TEST_POSTGRES_URL), `fdfs-mount export` on both engines, and
/// `fdfs-mount meta import` of files uploaded with the `fdfs` CLI (SEMANTICS.md, "Tools").
@Suite(.serialized) struct MetadataToolsE2ETests {
    static func tool(_ arguments: String, timeout: Double = 120) throws -> ProcessResult {
        Shell.run("'\(try TestMount.binary())' \(arguments)", timeout: timeout)
    }

    /// A fresh schema of the test database, as a URL.
    static func freshURL() throws -> String {
        String(try SharedNamespaceE2ETests.sharedMetaOption().dropFirst("meta=".count))
    }

    /// Uploads `path` with the `fdfs` CLI; its file ID.
    static func uploadWithCLI(_ path: String, group: String? = nil) throws -> String {
        let fdfs = URL(fileURLWithPath: try TestMount.binary()).deletingLastPathComponent().path + "/fdfs"
        let out = Shell.ok("'\(fdfs)' upload -c '\(try TestCluster.clientConf())' '\(path)'\(group.map { " --group \($0)" } ?? "")")
        let id = out.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        guard id.hasPrefix("group") else { throw HarnessError("fdfs upload printed no file ID: \(out)") }
        return id
    }

    @Test func migratesTenThousandFilesFromSQLiteToPostgres() throws {
        let conf = try TestCluster.clientConf()
        // A one-machine mount makes files, a directory, a symlink, a hard link and a FIFO.
        let a = try TestMount()
        defer { a.stop() }
        let dir = a.workdir()
        let big = localFile(300_000, in: a.root), small = localFile(5, in: a.root)
        Shell.ok("cp '\(big.path)' '\(dir)/big.bin' && cp '\(small.path)' '\(dir)/small.bin' && mkdir '\(dir)/sub' && ln -s ../big.bin '\(dir)/sub/link' && ln '\(dir)/big.bin' '\(dir)/sub/hard.bin' && mkfifo '\(dir)/fifo'")
        let bigID = try mountedFileID(dir + "/big.bin").description, smallID = try mountedFileID(dir + "/small.bin").description
        let relative = String(dir.dropFirst(a.mountpoint.count + 1))

        // Refused while the mount holds the SQLite store.
        let target = try Self.freshURL()
        let busy = try Self.tool("meta migrate --from sqlite:'\(a.stateDir)' --to '\(target)'")
        #expect(busy.status != 0 && busy.stderr.contains("in use by the mount"), "\(busy)")
        #expect(a.stop() == 0)

        // 10 000 more names (100 directories of 100), imported into the SQLite store.
        var lines = ""
        for i in 0..<10_000 { lines += "\(relative)/tree/d\(i / 100)/f\(i)\t\(i % 2 == 0 ? bigID : smallID)\n" }
        let list = a.root + "/import.tsv"
        try lines.write(toFile: list, atomically: true, encoding: .utf8)
        let imported = try Self.tool("meta import '\(list)' --meta sqlite:'\(a.stateDir)' -c '\(conf)'", timeout: 60)
        #expect(imported.status == 0 && imported.stdout.contains("imported 10000, replaced 0, skipped 0, failed 0"), "\(imported)")

        let before = try Self.tool("export --all '\(a.stateDir)'")
        #expect(before.status == 0)
        #expect(before.stdout.split(separator: "\n").count == 10_000 + 100 + 1 + 1 + 6, "export --all lines: the tree, its directories, the work directory and its six names")

        let started = ContinuousClock.now
        let migrated = try Self.tool("meta migrate --from sqlite:'\(a.stateDir)' --to '\(target)'", timeout: 60)
        let took = ContinuousClock.now - started
        print("meta migrate of \(before.stdout.split(separator: "\n").count) names: \(took)\n\(migrated.stdout)")
        #expect(migrated.status == 0, "\(migrated)")
        #expect(migrated.stdout.contains("identical on both sides"))
        #expect(took < .seconds(30))

        let after = try Self.tool("export --all --meta '\(target)'")
        #expect(after.status == 0 && after.stdout == before.stdout, "export differs after the migration")
        #expect(try Self.tool("export '\(a.stateDir)'").stdout == Self.tool("export --meta '\(target)'").stdout)

        // Into a target that is not empty: refused, and the target unchanged.
        let again = try Self.tool("meta migrate --from sqlite:'\(a.stateDir)' --to '\(target)'")
        #expect(again.status != 0 && again.stderr.contains("not empty"), "\(again)")
        #expect(try Self.tool("export --all --meta '\(target)'").stdout == before.stdout)

        // The migrated namespace, mounted on PostgreSQL, serves the files' bytes.
        let b = try TestMount(options: "meta=\(target)")
        defer { b.stop() }
        let dirB = b.path(relative)
        #expect(sha256(dirB + "/big.bin") == sha256(big.path))
        #expect(sha256(dirB + "/small.bin") == sha256(small.path))
        #expect(sha256(dirB + "/tree/d99/f9998") == sha256(big.path))
        #expect(sha256(dirB + "/tree/d0/f1") == sha256(small.path))
        #expect(Shell.ok("stat -c '%s %h %F' '\(dirB)/sub/hard.bin' '\(dirB)/tree/d42/f4201'") == "300000 2 regular file\n5 1 regular file\n")
        #expect(Shell.ok("readlink '\(dirB)/sub/link'") == "../big.bin\n")
        #expect(Shell.ok("stat -c %F '\(dirB)/fifo'") == "fifo\n")
        #expect(Shell.ok("ls '\(dirB)/tree' | wc -l").trimmingCharacters(in: .whitespacesAndNewlines) == "100")
        // New names continue after the copied inode numbers.
        Shell.ok("printf new > '\(dirB)/tree/new.txt'")
        #expect(Shell.ok("cat '\(dirB)/tree/new.txt'") == "new")
        #expect(!b.log.contains(" error "), "mount B logged errors:\n\(b.log)")
    }

    @Test func importsFilesUploadedWithTheCLIAndReadsThemByName() throws {
        let conf = try TestCluster.clientConf()
        let work = NSTemporaryDirectory() + "fdfs-e2e-import-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let one = localFile(1_200_000, in: work), two = localFile(777, in: work)
        let idOne = try Self.uploadWithCLI(one.path)
        let group = String(idOne.prefix { $0 != "/" })
        let idTwo = try Self.uploadWithCLI(two.path, group: group)
        #expect(idTwo.hasPrefix(group + "/"))
        let base = "\(group)/imported-\(UUID().uuidString.prefix(8))"
        let meta = try Self.freshURL()
        let list = work + "/ids.tsv"
        try "# uploaded with fdfs\n\(base)/one.bin\t\(idOne)\n\n\(base)/deep/er/two.dat\t\(idTwo)\n".write(toFile: list, atomically: true, encoding: .utf8)

        let result = try Self.tool("meta import '\(list)' --meta '\(meta)' -c '\(conf)'")
        #expect(result.status == 0 && result.stdout.contains("imported 2, replaced 0, skipped 0, failed 0"), "\(result)")

        let mount = try TestMount(options: "meta=\(meta)")
        defer { mount.stop() }
        #expect(sha256(mount.path("\(base)/one.bin")) == sha256(one.path))
        #expect(sha256(mount.path("\(base)/deep/er/two.dat")) == sha256(two.path))
        #expect(Shell.ok("stat -c %s '\(mount.path("\(base)/one.bin"))' '\(mount.path("\(base)/deep/er/two.dat"))'") == "1200000\n777\n")
        let mtime = Int(Shell.ok("stat -c %Y '\(mount.path("\(base)/one.bin"))'").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(abs(mtime - Int(Date().timeIntervalSince1970)) < 600, "mtime is the upload time")
        #expect(try mountedFileID(mount.path("\(base)/one.bin")).description == idOne)

        // The same lines again: skipped. Another file under an existing name: skipped unless --replace.
        let rerun = try Self.tool("meta import '\(list)' --meta '\(meta)' -c '\(conf)'")
        #expect(rerun.status == 0 && rerun.stdout.contains("imported 0, replaced 0, skipped 2, failed 0"), "\(rerun)")
        try "\(base)/one.bin\t\(idTwo)\n".write(toFile: list, atomically: true, encoding: .utf8)
        let refused = try Self.tool("meta import '\(list)' --meta '\(meta)' -c '\(conf)'")
        #expect(refused.stdout.contains("skipped 1") && refused.stderr.contains("--replace"), "\(refused)")
        #expect(sha256(mount.path("\(base)/one.bin")) == sha256(one.path))
        let replaced = try Self.tool("meta import '\(list)' --replace --meta '\(meta)' -c '\(conf)'")
        #expect(replaced.status == 0 && replaced.stdout.contains("replaced 1"), "\(replaced)")
        let seen = Processes.wait(for: 10, poll: 0.1) { sha256(mount.path("\(base)/one.bin")) == sha256(two.path) }
        #expect(seen, "the mount reads the replacement")
    }

    @Test func refusesHostileImportLines() throws {
        let conf = try TestCluster.clientConf()
        let work = NSTemporaryDirectory() + "fdfs-e2e-hostile-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: work + "/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let file = localFile(100, in: work)
        let id = try Self.uploadWithCLI(file.path)
        let group = String(id.prefix { $0 != "/" })
        let other = group == "group1" ? "group2" : "group1"
        let hostile = [
            "../etc/passwd\t\(id)",
            "\(group)/../../etc/passwd\t\(id)",
            "\(group)/./a\t\(id)",
            "/etc/passwd\t\(id)",
            "\(group)//a\t\(id)",
            "\(group)/a\\x00b\t\(id)",
            "\(group)/bad\\q\t\(id)",
            "\(group)\t\(id)",
            "\(other)/a\t\(id)",
            "\(group)/M00/00/00/a\t\(id)",
            "\(group)/a\t\(group)/M00/00/00/../../../../etc/passwd",
            "\(group)/a\t\(group)/M00/00/00/\(String(repeating: "A", count: 200))",
            "\(group)/a\tnot-a-file-id",
            "\(group)/a",
        ]
        let lines = ["\(group)/ok/fine.txt\t\(id)"] + hostile
        try (lines.joined(separator: "\n") + "\n").write(toFile: work + "/list.tsv", atomically: true, encoding: .utf8)
        try Self.tool("meta init '\(work)/state'").status == 0 ? () : { throw HarnessError("meta init failed") }()
        let result = try Self.tool("meta import '\(work)/list.tsv' --meta sqlite:'\(work)/state' -c '\(conf)'")
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("imported 1, replaced 0, skipped 0, failed \(hostile.count)"), "\(result)")
        for number in 2...(hostile.count + 1) {
            #expect(result.stderr.contains("line \(number): refused"), "line \(number) (\(lines[number - 1])) was not refused:\n\(result.stderr)")
        }
        #expect(try Self.tool("export --all '\(work)/state'").stdout.split(separator: "\n").map { $0.split(separator: "\t")[0] }
            == ["\(group)/ok", "\(group)/ok/fine.txt"])
    }
}
