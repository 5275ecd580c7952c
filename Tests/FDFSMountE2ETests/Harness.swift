import FDFSClient
import FDFSProtocol
import Foundation
import class FDFSTestSupport.ChildProcess
import enum FDFSTestSupport.Processes
import struct FDFSTestSupport.ProcessResult
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Why an end-to-end test cannot run. Thrown (never skipped) so a missing cluster is loud.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The cluster named by FDFS_TEST_CLIENT_CONF.
enum TestCluster {
    static func clientConf() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["FDFS_TEST_CLIENT_CONF"], !path.isEmpty else {
            throw HarnessError("FDFS_TEST_CLIENT_CONF is not set: the end-to-end tests need a running cluster (start one with `Scripts/cluster start DIR` and point FDFS_TEST_CLIENT_CONF at DIR/client.conf)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw HarnessError("FDFS_TEST_CLIENT_CONF=\(path) does not exist: is the cluster running?")
        }
        return path
    }

    static func client() throws -> FDFSClient {
        FDFSClient(configuration: try ClientConfiguration.load(path: clientConf()))
    }

    /// Runs a cluster control command (`stop-tracker`, `start-tracker`, `stop-storage N`,
    /// `kill-storage N` (SIGKILL), `start-storage N`) through FDFS_TEST_CLUSTER_CTL, or as
    /// `Scripts/cluster node-stop|node-kill|node-start
    /// NODE $FDFS_TEST_CLUSTER_DIR` (storage N is node sN).
    static func control(_ command: String) throws {
        let env = ProcessInfo.processInfo.environment
        var line: String
        if let ctl = env["FDFS_TEST_CLUSTER_CTL"], !ctl.isEmpty {
            line = "\(ctl) \(command)"
        } else if let dir = env["FDFS_TEST_CLUSTER_DIR"], !dir.isEmpty {
            let script = packageRoot() + "/Scripts/cluster"
            guard FileManager.default.isExecutableFile(atPath: script) else {
                throw HarnessError("\(script) is missing: this test needs the cluster script to stop and start servers")
            }
            let parts = command.split(separator: " ").map(String.init)
            let action = parts[0].hasPrefix("stop") ? "node-stop" : parts[0].hasPrefix("kill") ? "node-kill" : "node-start"
            let node = parts[0].hasSuffix("tracker") ? "tracker" : "s\(parts.count > 1 ? parts[1] : "1")"
            line = "'\(script)' \(action) \(node) '\(dir)'"
        } else {
            throw HarnessError("this test stops and starts cluster servers: set FDFS_TEST_CLUSTER_DIR (with Scripts/cluster) or FDFS_TEST_CLUSTER_CTL")
        }
        let result = Shell.run(line, timeout: 60)
        guard result.status == 0 else { throw HarnessError("cluster control '\(line)' failed (\(result.status)): \(result.stderr)") }
    }

    static func packageRoot() -> String {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir.path }
            dir = dir.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath
    }
}

enum Shell {
    /// Runs `/bin/bash -c line` to completion (``Processes/shell(_:environment:timeout:)``),
    /// killing it after `timeout` seconds.
    @discardableResult
    static func run(_ line: String, timeout: Double = 120) -> ProcessResult {
        do { return try Processes.shell(line, timeout: .milliseconds(Int64(timeout * 1000))) } catch {
            return ProcessResult(status: -1, stdout: "", stderr: "cannot spawn bash: \(error)", stdoutBytes: Data(), timedOut: false)
        }
    }

    /// Runs and requires success.
    @discardableResult
    static func ok(_ line: String, timeout: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let result = run(line, timeout: timeout)
        #expect(result.status == 0, "`\(line)` failed (\(result.status)): \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    Processes.wait(for: seconds, poll: 0.02, condition)
}

func isMounted(_ path: String) -> Bool {
    guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
    return text.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 && fields[4] == path
    }
}

/// Whether the file system mounted at `path` answers a GETATTR (its root is on another device
/// than the directory it is mounted on).
func answers(_ path: String) -> Bool {
    var mounted = stat(), parent = stat()
    return stat(path, &mounted) == 0 && stat(path + "/..", &parent) == 0 && mounted.st_dev != parent.st_dev
}

/// One fdfs-mount process on a temporary mount point. `stop()` (or deinit) unmounts and ends
/// it whatever happened.
final class TestMount {
    let root: String
    let mountpoint: String
    let stateDir: String
    let options: String
    private(set) var process: ChildProcess?
    let logPath: String

    static func binary() throws -> String {
        try Processes.builtExecutable("fdfs-mount")
    }

    init(options: String = "", stateDir: String? = nil) throws {
        root = NSTemporaryDirectory() + "fdfs-e2e-" + UUID().uuidString.prefix(8)
        mountpoint = root + "/mnt"
        self.stateDir = stateDir ?? root + "/state"
        self.options = options
        logPath = root + "/mount.log"
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        let binary = try Self.binary()
        let conf = try TestCluster.clientConf()
        var opts = "state_dir=\(stateDir)"
        if !options.isEmpty { opts += "," + options }
        let child = try ChildProcess(daemon: binary, [mountpoint, "-c", conf, "-f", "-o", opts], log: logPath)
        process = child
        // Mounted, and answering: the kernel mount comes before the file system opens its
        // state, which may still fail (the process then exits and the mount goes).
        guard waitUntil(20, { isMounted(mountpoint) || !child.isRunning }), isMounted(mountpoint), answers(mountpoint), child.isRunning else {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            stop()
            throw HarnessError("fdfs-mount did not mount \(mountpoint) within 20 s:\n\(log)")
        }
    }

    var pid: Int32 { process?.pid ?? 0 }

    func path(_ relative: String) -> String { mountpoint + "/" + relative }

    /// SIGTERM and wait; returns the exit status (nil if it had to be killed).
    @discardableResult
    func stop() -> Int32? {
        var status: Int32?
        if let process {
            if process.isRunning {
                process.signal(SIGTERM)
                if waitUntil(20, { !process.isRunning }) { status = process.wait() }
            } else {
                status = process.wait()
            }
        }
        cleanup()
        return status
    }

    /// kill -9 (a crash): the kernel mount stays until cleaned up.
    func crash() {
        guard let process else { return }
        process.signal(SIGKILL)
        process.wait()
        _ = Shell.run("fusermount3 -u '\(mountpoint)' 2>/dev/null || umount -l '\(mountpoint)' 2>/dev/null", timeout: 20)
        self.process = nil
    }

    /// Unmounts and ends the process, whatever state they are in.
    func cleanup() {
        if let process, process.isRunning {
            process.signal(SIGKILL)
            process.wait()
        }
        if isMounted(mountpoint) {
            _ = Shell.run("fusermount3 -u '\(mountpoint)' 2>/dev/null || umount -l '\(mountpoint)'", timeout: 20)
        }
        process = nil
    }

    /// The mount's counters (Prometheus text from the root's user.fdfs.metrics xattr).
    func metric(_ name: String) -> Int64 {
        let text = Shell.run("getfattr --only-values -n user.fdfs.metrics '\(mountpoint)'").stdout
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int64(line.split(separator: " ").last ?? "") ?? -1
        }
        return -1
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        cleanup()
        try? FileManager.default.removeItem(atPath: root)
    }
}

extension TestMount {
    /// A fresh directory under the first group, and its path in the mount.
    func workdir() -> String {
        let group = Shell.ok("ls '\(mountpoint)' | head -1").trimmingCharacters(in: .whitespacesAndNewlines)
        let dir = path(group) + "/e2e-" + UUID().uuidString.prefix(8)
        Shell.ok("mkdir '\(dir)'")
        return dir
    }
}

/// The cluster file ID of a mounted file (its `user.fdfs.file_id` xattr).
func mountedFileID(_ path: String) throws -> FileID {
    try FileID(Shell.ok("getfattr --only-values -n user.fdfs.file_id '\(path)'"))
}

/// Deletes reach the other group members by asynchronous replication, and the tracker may
/// send the query to one of them: waits (up to 20 s per file) until no storage has it.
func expectGoneFromCluster(_ ids: [FileID], _ client: FDFSClient, sourceLocation: SourceLocation = #_sourceLocation) async {
    for id in ids {
        let gone = await Processes.wait(for: 20, poll: 0.2) {
            do { _ = try await client.fileInfo(id) } catch { return true }
            return false
        }
        #expect(gone, "\(id) is still in the cluster", sourceLocation: sourceLocation)
    }
}

/// Random bytes written to a local temp file.
func localFile(_ size: Int, in dir: String) -> (path: String, bytes: [UInt8]) {
    var bytes = [UInt8](repeating: 0, count: size)
    var generator = SystemRandomNumberGenerator()
    for i in stride(from: 0, to: size, by: 8) {
        var value = generator.next()
        withUnsafeBytes(of: &value) { raw in
            for j in 0..<min(8, size - i) { bytes[i + j] = raw[j] }
        }
    }
    let path = dir + "/local-" + UUID().uuidString.prefix(8)
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return (path, bytes)
}

/// `dd` ranges of the mounted file (4 KiB pages at the start, the middle and the tail of a
/// 3.5 MB file) hash the same as the local copy's.
func expectSameRanges(_ mounted: String, _ local: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for (skip, count) in [(0, 1), (100, 7), (3000, 500), (854, 1)] {
        let a = Shell.ok("dd if='\(mounted)' bs=4096 skip=\(skip) count=\(count) 2>/dev/null | sha256sum")
        let b = Shell.ok("dd if='\(local)' bs=4096 skip=\(skip) count=\(count) 2>/dev/null | sha256sum")
        #expect(a == b, "dd skip=\(skip) count=\(count)", sourceLocation: sourceLocation)
    }
}

func sha256(_ path: String) -> String {
    String(Shell.run("sha256sum '\(path)' | cut -d' ' -f1").stdout.prefix(64))
}
