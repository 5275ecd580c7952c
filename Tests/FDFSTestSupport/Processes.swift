import Foundation

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    /// The exit code (128 + the signal when a signal ended it).
    public var status: Int32
    public var stdout: String
    /// With a timeout, ends with a line saying the process was killed.
    public var stderr: String
    public var stdoutBytes: Data
    /// The process ran past its timeout and was stopped.
    public var timedOut: Bool

    public init(status: Int32, stdout: String, stderr: String, stdoutBytes: Data, timedOut: Bool) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes
        self.timedOut = timedOut
    }
}

/// Helpers for tests that run our executables and shell tools as real processes (all through
/// ``ChildProcess``).
public enum Processes {
    /// Directory holding the built executables: `$FDFS_BIN_DIR`, else the directory of the
    /// running test bundle (SwiftPM puts products and the test bundle side by side).
    public static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["FDFS_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The bundle may be `…/debug/fdfsPackageTests.xctest` (a file) or a directory bundle.
        while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent() }
        return dir
    }

    /// Path of one of our executables.
    public static func executable(_ name: String) -> String {
        binDirectory.appendingPathComponent(name).path
    }

    /// Path of one of our executables; a clear error when it has not been built.
    public static func builtExecutable(_ name: String) throws(LaunchError) -> String {
        let path = executable(name)
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LaunchError(description: "\(path) not found; build it (swift build) or set FDFS_BIN_DIR")
        }
        return path
    }

    /// Runs a process to completion: `stdin` as its input (else /dev/null), the test process's
    /// environment plus `environment`, stdout and stderr captured (through temp files, so a
    /// daemon it starts cannot hold the test up by keeping a pipe open; with `mergeOutput` both
    /// go to `stdout`, interleaved as written). Past `timeout` it gets SIGTERM, then SIGKILL.
    @discardableResult
    public static func run(
        _ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
        mergeOutput: Bool = false, timeout: Duration = .seconds(120)
    ) throws -> ProcessResult {
        let base = NSTemporaryDirectory() + "fdfs-run-" + UUID().uuidString.prefix(8)
        let inPath = base + ".in", outPath = base + ".out", errPath = base + ".err"
        defer { for file in [inPath, outPath, errPath] { unlink(file) } }
        if let stdin { try stdin.write(to: URL(fileURLWithPath: inPath)) }
        let child = try ChildProcess(
            path, arguments, environment: environment, stdin: stdin == nil ? .null : .file(inPath),
            stdout: .file(outPath), stderr: .file(mergeOutput ? outPath : errPath))
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        var status = child.wait(timeout: seconds)
        let timedOut = status == nil
        if status == nil { status = child.stop(grace: 5) }
        let stdoutData = FileManager.default.contents(atPath: outPath) ?? Data()
        var stderr = mergeOutput ? "" : (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        if timedOut { stderr += "\n(killed after \(timeout))" }
        return ProcessResult(
            status: status!, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: stderr,
            stdoutBytes: stdoutData, timedOut: timedOut)
    }

    /// Runs `bash -c script` to completion (see ``run(_:_:environment:stdin:mergeOutput:timeout:)``).
    @discardableResult
    public static func shell(_ script: String, environment: [String: String] = [:], timeout: Duration = .seconds(300)) throws -> ProcessResult {
        try run("/bin/bash", ["-c", script], environment: environment, timeout: timeout)
    }

    /// Polls `condition` until it holds or the deadline passes.
    public static func wait(for seconds: Double = 30, poll: Double = 0.05, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(UInt32(poll * 1_000_000))
        }
        return try condition()
    }

    /// Polls an async `condition` until it holds or the deadline passes.
    public static func wait(for seconds: Double = 30, poll: Double = 0.05, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(Int64(poll * 1000)))
        }
        return try await condition()
    }
}

/// The cluster `Scripts/test` starts for the integration tests (`Scripts/cluster`).
public struct TestCluster: Sendable {
    /// client.conf of the running cluster.
    public let clientConf: String
    /// The cluster directory (for `Scripts/cluster node-stop …`), when known.
    public let directory: String?

    /// The shared cluster from `$FDFS_TEST_CLIENT_CONF`; a clear error when it is missing, so
    /// these tests fail loudly instead of skipping.
    public static func shared() throws -> TestCluster {
        let env = ProcessInfo.processInfo.environment
        guard let conf = env["FDFS_TEST_CLIENT_CONF"], FileManager.default.fileExists(atPath: conf) else {
            throw TestSetupError(description: """
                FDFS_TEST_CLIENT_CONF is not set or missing: these end-to-end tests need a running cluster. \
                Run them through Scripts/test, which starts one with Scripts/cluster.
                """)
        }
        return TestCluster(clientConf: conf, directory: env["FDFS_TEST_CLUSTER_DIR"])
    }

    /// Runs `Scripts/cluster COMMAND NODE DIR` (node-stop, node-kill, node-start).
    public func control(_ command: String, _ node: String) throws {
        guard let directory else { throw TestSetupError(description: "FDFS_TEST_CLUSTER_DIR is not set: cannot control cluster nodes") }
        let script = Vectors.packageRoot.appendingPathComponent("Scripts/cluster").path
        let result = try Processes.run(script, [command, node, directory])
        guard result.status == 0 else { throw TestSetupError(description: "Scripts/cluster \(command) \(node) failed: \(result.stderr)") }
    }
}

/// A test could not be set up; the message says what is missing.
public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
