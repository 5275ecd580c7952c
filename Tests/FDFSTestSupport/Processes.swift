import Foundation

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var stdoutBytes: Data
}

/// Helpers for tests that run our executables and shell tools as real processes.
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

    /// Path of one of our executables; records an issue naming the path when it is missing.
    public static func executable(_ name: String) -> String {
        binDirectory.appendingPathComponent(name).path
    }

    /// Runs a process to completion and captures its output.
    @discardableResult
    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil, timeout: Duration = .seconds(120)) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let collector = OutputCollector(out: out, err: err)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                break
            }
            usleep(2_000)
        }
        process.waitUntilExit()
        let (stdoutData, stderrData) = collector.finish()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self),
            stdoutBytes: stdoutData)
    }

    /// Runs `bash -c script`.
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

    /// SIGTERM, then SIGKILL if `process` has not exited within `grace` seconds; waits for it.
    public static func terminate(_ process: Process, grace: Double = 10) {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            if !wait(for: grace, poll: 0.02, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }
}

/// Drains a process's pipes on background threads so a chatty child never blocks.
private final class OutputCollector: @unchecked Sendable {
    private var stdout = Data(), stderr = Data()
    private let group = DispatchGroup()

    init(out: Pipe, err: Pipe) {
        group.enter()
        DispatchQueue.global().async { [self] in
            stdout = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async { [self] in
            stderr = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }

    func finish() -> (Data, Data) {
        group.wait()
        return (stdout, stderr)
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
