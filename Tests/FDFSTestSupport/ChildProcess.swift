import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A process could not be started; the message names the executable and the reason.
public struct LaunchError: Error, CustomStringConvertible {
    public var description: String
}

/// A process a test started: run-to-completion tools (through ``Processes/run(_:_:environment:stdin:mergeOutput:timeout:)``),
/// long-running daemons and mounts. Started with posix_spawn and reaped with waitpid (Foundation's
/// `Process` can miss a child's exit when waited for from a test's async context). Standard
/// streams go to /dev/null or to files, never to pipes, so a grandchild that keeps them open
/// cannot hold a test up. A child still running when the test process exits is killed.
public final class ChildProcess: Sendable {
    /// Where a standard stream goes.
    public enum Stream: Sendable, Equatable {
        /// /dev/null.
        case null
        /// A file: read for stdin; for output created if missing and appended to.
        case file(String)
    }

    /// The process ID.
    public let pid: pid_t
    /// The file stdout and stderr were sent to (the later one when they differ), for ``log``.
    public let logPath: String?
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `executable` (a path, or a name looked up in `PATH`) with `arguments`, the test
    /// process's environment plus `environment`, and the given streams.
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
        stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null
    ) throws(LaunchError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            case let .file(path) where fd == 0: posix_spawn_file_actions_addopen(&actions, fd, path, O_RDONLY, 0)
            case let .file(path): posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test process may block or ignore signals; the child starts with the defaults.
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw LaunchError(description: "cannot start \(executable): \(String(cString: strerror(code)))") }
        self.pid = pid
        if case let .file(path) = stderr { logPath = path } else if case let .file(path) = stdout { logPath = path } else { logPath = nil }
        Self.live.withLock { _ = $0.insert(pid) }
        _ = Self.killAtExit
    }

    /// A daemon: stdout and stderr both appended to `log`.
    public convenience init(daemon executable: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws(LaunchError) {
        try self.init(executable, arguments, environment: environment, stdout: .file(log), stderr: .file(log))
    }

    /// The exit code once reaped (128 + the signal when a signal ended it), reaping it if it
    /// has exited; nil while it runs.
    private func poll() -> Int32? {
        exitStatus.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            guard result == pid else { return nil }
            let signal = raw & 0x7F
            status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
            Self.live.withLock { _ = $0.remove(pid) }
            return status
        }
    }

    /// True until the process has exited.
    public var isRunning: Bool { poll() == nil }

    /// Sends `sig` unless the process has already been reaped (so never to a reused pid).
    public func signal(_ sig: Int32) {
        exitStatus.withLock { status in
            if status == nil { kill(pid, sig) }
        }
    }

    /// Waits for the exit up to `seconds`; the exit code, or nil if it still runs.
    public func wait(timeout seconds: Double) -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var pause: UInt32 = 1_000
        while true {
            if let status = poll() { return status }
            if ContinuousClock.now >= deadline { return nil }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
    }

    /// Waits for the exit however long it takes; the exit code.
    @discardableResult
    public func wait() -> Int32 {
        while true {
            if let status = wait(timeout: 3600) { return status }
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds; the exit code.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32 {
        signal(SIGTERM)
        if let status = wait(timeout: grace) { return status }
        return kill9()
    }

    /// SIGKILL at once (a crash); the exit code.
    @discardableResult
    public func kill9() -> Int32 {
        signal(SIGKILL)
        return wait()
    }

    /// What was written to ``logPath`` so far.
    public var log: String {
        guard let logPath else { return "" }
        return (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Children started and not yet reaped.
    private static let live = Mutex<Set<pid_t>>([])

    /// Registers, once, the exit handler that kills children tests left running.
    private static let killAtExit: Void = {
        _ = atexit {
            for pid in ChildProcess.live.withLock({ $0 }) { kill(pid, SIGKILL) }
        }
    }()
}
