import FDFSTestSupport
import Foundation
import Testing

/// The `fdfs` command line against the cluster that Scripts/test starts.
@Suite(.serialized) struct CommandLineTests {
    let cluster: TestCluster
    let fdfs = Processes.executable("fdfs")
    /// Removed when the test's suite instance goes away.
    let scratchDirectory = TemporaryDirectory("fdfs-cli")
    var scratch: URL { scratchDirectory.url }

    init() throws {
        cluster = try TestCluster.shared()
    }

    func cli(_ arguments: String...) throws -> ProcessResult {
        try Processes.run(fdfs, arguments + ["-c", cluster.clientConf])
    }

    func file(_ name: String, bytes: Int, seed: UInt8 = 7) throws -> String {
        let path = scratch.appendingPathComponent(name).path
        var data = Data(count: bytes)
        for index in 0..<bytes { data[index] = UInt8(truncatingIfNeeded: index &* 31) &+ seed }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func uploadPrintsOnlyTheIDAndDownloadReturnsTheBytes() throws {
        let source = try file("big.bin", bytes: 5_000_000)
        let upload = try cli("upload", source, "--meta", "owner=ann", "--meta", "kind=test")
        #expect(upload.status == 0, "\(upload.stderr)")
        let id = upload.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(upload.stdout == id + "\n", "stdout must hold the ID and nothing else")
        #expect(id.hasPrefix("group") && id.hasSuffix(".bin"))

        let target = scratch.appendingPathComponent("out.bin").path
        #expect(try cli("download", id, target).status == 0)
        #expect(FileManager.default.contentsEqual(atPath: source, andPath: target))

        let range = try cli("download", id, "-", "--offset", "1000", "--length", "300")
        let original = try Data(contentsOf: URL(fileURLWithPath: source))
        #expect(range.stdoutBytes == original[1000..<1300])

        let meta = try cli("meta", "get", id)
        #expect(meta.stdout == "kind=test\nowner=ann\n" || meta.stdout == "owner=ann\nkind=test\n")

        let located = try cli("locate", id)
        #expect(located.status == 0 && located.stdout.hasPrefix("127.0.0."), "\(located.stdout) \(located.stderr)")

        let info = try cli("info", id, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
        #expect(json?["size"] as? Int == 5_000_000)
        #expect(json?["kind"] as? String == "normal")
        // Asked of one storage by address, without the CRC (what a replica holds so far).
        let holder = String(located.stdout.split(separator: "\n").first ?? "")
        let direct = try cli("info", id, "--storage", holder, "--no-crc", "--json")
        let asked = try JSONSerialization.jsonObject(with: Data(direct.stdout.utf8)) as? [String: Any]
        #expect(asked?["size"] as? Int == 5_000_000, "\(direct.stdout) \(direct.stderr)")
        #expect(asked?["crc32"] as? Int == json?["crc32"] as? Int, "a normal file's CRC32 comes from its name")
        let nowhere = try cli("info", id, "--storage", "127.0.0.1:1")
        #expect(nowhere.status != 0 && nowhere.stderr.contains("127.0.0.1:1"), "\(nowhere.stderr)")
        // Downloaded from that storage alone: the same bytes; from one that is not there, an error naming it.
        let fromHolder = try cli("download", id, "-", "--storage", holder, "--offset", "1000", "--length", "300")
        #expect(fromHolder.stdoutBytes == original[1000..<1300], "\(fromHolder.stderr)")
        let fromNowhere = try cli("download", id, "-", "--storage", "127.0.0.1:1")
        #expect(fromNowhere.status != 0 && fromNowhere.stderr.contains("127.0.0.1:1"), "\(fromNowhere.stderr)")

        #expect(try cli("delete", id).status == 0)
        let again = try cli("delete", id)
        #expect(again.status != 0)
        #expect(again.stderr.contains("ENOENT"))
        #expect(again.stderr.split(separator: "\n").count == 1, "an error is one line: \(again.stderr)")
    }

    @Test func appenderCommands() throws {
        let first = try file("a.txt", bytes: 100)
        let second = try file("b.txt", bytes: 50, seed: 9)
        let id = try cli("upload", "--appender", first).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!id.isEmpty)
        #expect(try cli("append", id, second).status == 0)
        let whole = try cli("download", id, "-")
        let expected = try Data(contentsOf: URL(fileURLWithPath: first)) + Data(contentsOf: URL(fileURLWithPath: second))
        #expect(whole.stdoutBytes == expected)
        #expect(try cli("truncate", id, "120").status == 0)
        #expect(try cli("download", id, "-").stdoutBytes == expected.prefix(120))
        let info = try cli("info", id, "--json")
        #expect(info.stdout.contains("\"kind\" : \"appender\""))
        #expect(try cli("delete", id).status == 0)
    }

    @Test func metaSetMergeAndJSON() throws {
        let source = try file("m.txt", bytes: 10)
        let id = try cli("upload", source).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli("meta", "set", id, "a=1", "b=2").status == 0)
        #expect(try cli("meta", "set", id, "b=3", "c=4", "--merge").status == 0)
        let json = try cli("meta", "get", id, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(object == ["a": "1", "b": "3", "c": "4"])
        #expect(try cli("meta", "set", id, "bad\u{1}name=x").status != 0)
        #expect(try cli("delete", id).status == 0)
    }

    @Test func monitorListsGroupsAndActiveStorages() throws {
        let text = try cli("monitor")
        #expect(text.status == 0)
        #expect(text.stdout.contains("group name = group1"))
        #expect(text.stdout.contains("ACTIVE"))
        let json = try cli("monitor", "--json")
        let groups = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect((groups?.count ?? 0) >= 1)
    }

    /// Issue 15 item 11: a second `Scripts/cluster start` on the ports of the running test
    /// cluster must fail (its daemons cannot bind) instead of reporting "cluster up" because the
    /// health check reached the other cluster; it stops what it started, and the running
    /// cluster is untouched.
    @Test func clusterStartFailsWhenItsPortsBelongToAnotherCluster() throws {
        let script = Vectors.packageRoot.appendingPathComponent("Scripts/cluster").path
        let other = scratch.appendingPathComponent("other-cluster").path
        defer { _ = try? Processes.run(script, ["stop", other]) }
        let result = try Processes.run(script, ["start", other], environment: ["FDFS_CLUSTER_TIMEOUT": "20"])
        #expect(result.status != 0)
        #expect(!result.stderr.contains("cluster up"), "\(result.stderr)")
        #expect(result.stderr.contains("exited during start") || result.stderr.contains("not listening"), "\(result.stderr)")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: other + "/pids")) ?? []
        #expect(leftovers.isEmpty, "pid files left: \(leftovers)")
        let monitor = try cli("monitor")
        #expect(monitor.status == 0 && monitor.stdout.components(separatedBy: "ACTIVE").count - 1 >= 3, "\(monitor.stdout)")
    }

    @Test func badInputsAreOneLineErrors() throws {
        for id in ["group1/M00/00/00/../../etc/passwd", "nogroup", "group1/M00/00/00/short.txt", "bad-group!/M00/00/00/x"] {
            let result = try cli("download", id, "-")
            #expect(result.status != 0)
            #expect(result.stderr.hasPrefix("Error: invalid file ID"), "\(id): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        let missing = try Processes.run(fdfs, ["info", "group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt", "--tracker", "127.0.0.1:1"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("127.0.0.1:1"))
    }
}
