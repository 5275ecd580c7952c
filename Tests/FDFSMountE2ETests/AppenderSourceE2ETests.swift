import FDFSClient
import FDFSProtocol
import Foundation
import enum FDFSTestSupport.Processes
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Sends a signal to a storage of the Scripts/cluster cluster (SIGSTOP and SIGCONT: a member
/// that stops receiving replication for a moment). Throws when the cluster is not one of ours.
func signalStorage(_ number: Int, _ sig: Int32) throws {
    guard let dir = ProcessInfo.processInfo.environment["FDFS_TEST_CLUSTER_DIR"], !dir.isEmpty else {
        throw HarnessError("this test pauses a storage: set FDFS_TEST_CLUSTER_DIR (a cluster started with Scripts/cluster)")
    }
    let path = dir + "/pids/s\(number).pid"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw HarnessError("no pid in \(path)")
    }
    guard kill(pid, sig) == 0 else { throw HarnessError("kill(\(pid), \(sig)) failed: errno \(errno)") }
}

extension MountE2E {
/// Found by fdfs-fsx (appendable, a storage killed during the run): an appender file changed in
/// place is read from another member while its source is down, and that member has not synced
/// the change yet.
@Suite(.serialized) struct AppenderSourceE2ETests {
    @Test func anAppenderFileIsNeverReadFromAMemberThatMissedItsLastChange() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: "appendable,stall_timeout=1")
        let work = mount.workdir()
        let file = work + "/log.bin"
        let first = localFile(200_000, in: mount.root)
        Shell.ok("cp '\(first.path)' '\(file)'")
        let id = try mountedFileID(file)
        #expect(id.kind == .appender)
        // group1 of Scripts/cluster: s1 = 127.0.0.2, s2 = 127.0.0.3.
        let source = id.generated.source.description == "127.0.0.2" ? 1 : 2, member = 3 - source
        let memberEndpoint = StorageEndpoint(ip: "127.0.0.\(member + 1)", port: try await storagePort(client, id))
        var paused = false, killed = false
        defer {
            if paused { try? signalStorage(member, SIGCONT) }
            if killed { try? TestCluster.control("start-storage \(source)") }
            mount.stop()
        }
        // The member holds the first version…
        #expect(await Processes.wait(for: 30, poll: 0.2) { (try? await client.fileInfo(id, on: memberEndpoint, computeCRC32: false).size) == 200_000 })
        // …and misses the change: paused while the source takes it, the source killed after.
        try signalStorage(member, SIGSTOP)
        paused = true
        Shell.ok("printf 'CHANGED' | dd of='\(file)' bs=1 seek=1000 conv=notrunc status=none && head -c 5000 /dev/urandom >> '\(file)'")
        let changed = mount.root + "/changed"
        Shell.ok("cp '\(first.path)' '\(changed)' && printf 'CHANGED' | dd of='\(changed)' bs=1 seek=1000 conv=notrunc status=none")
        try TestCluster.control("kill-storage \(source)")
        killed = true
        try signalStorage(member, SIGCONT)
        paused = false
        // While the source is down the mount has nothing trustworthy to read: an error, never
        // the member's older bytes.
        let during = Shell.run("sha256sum < '\(file)'", timeout: 60)
        #expect(during.status != 0, "read while the source is down returned \(during.stdout) (first version \(sha256(first.path)))")
        try TestCluster.control("start-storage \(source)")
        killed = false
        let tail = Shell.ok("tail -c 5000 '\(file)' | wc -c").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(tail == "5000")
        #expect(Shell.ok("head -c 200000 '\(file)' | sha256sum | cut -c1-64").prefix(64) == sha256(changed).prefix(64))
        #expect(Shell.ok("stat -c %s '\(file)'").trimmingCharacters(in: .whitespacesAndNewlines) == "205000")
        await client.shutdown()
    }

    /// The storage port of the file's group (what QUERY_FETCH_ALL names).
    func storagePort(_ client: FDFSClient, _ id: FileID) async throws -> Int {
        guard let port = try await client.tracker.queryFetchAll(id).first?.port else { throw HarnessError("no storage named for \(id)") }
        return port
    }
}
}
