import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The throw-away PostgreSQL server of the test run (start_test_postgres in Scripts/lib.sh:
/// `$FDFS_TEST_POSTGRES_DIR/data`, run as user postgres when we are root), stopped and started
/// again, or frozen and thawed, by the tests of an unreachable metadata engine.
public struct TestPostgresServer {
    /// The server's directory (`data/`, `server.log`) and port, and Debian's PostgreSQL binaries.
    public let dir: String
    public let port: String
    public let bin: String

    /// pg_ctl failed, or the environment names no server.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let dir = environment["FDFS_TEST_POSTGRES_DIR"], let url = environment["FDFS_TEST_POSTGRES_URL"],
              let portPart = url.split(separator: "@").last?.split(separator: "/").first?.split(separator: ":").last else {
            throw TestPostgresServer.Failure("FDFS_TEST_POSTGRES_DIR and FDFS_TEST_POSTGRES_URL must be set (start_test_postgres in Scripts/lib.sh)")
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let newest = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw TestPostgresServer.Failure("no PostgreSQL server under /usr/lib/postgresql")
        }
        self.dir = dir
        self.port = String(portPart)
        self.bin = "/usr/lib/postgresql/\(newest)/bin"
    }

    /// Runs pg_ctl as the server's owner, its output to /dev/null.
    public func pgctl(_ arguments: [String]) throws {
        let argv = (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [bin + "/pg_ctl"] + arguments
        let status = try ChildProcess(argv[0], Array(argv.dropFirst())).wait()
        guard status == 0 else { throw Failure("pg_ctl \(arguments.last ?? "") failed (status \(status))") }
    }

    /// Stops the server (fast shutdown: connections are closed).
    public func stop() throws { try pgctl(["-D", dir + "/data", "-m", "fast", "-w", "-t", "30", "stop"]) }

    /// Starts the server as start_test_postgres did.
    public func start() throws {
        try pgctl(["-D", dir + "/data", "-l", dir + "/server.log", "-w", "-t", "60",
                   "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(dir) -c fsync=off -c max_connections=200", "start"])
    }

    /// The postmaster and every process it started (the backends).
    public func processes() throws -> [pid_t] {
        let first = try String(contentsOfFile: dir + "/data/postmaster.pid", encoding: .utf8).split(separator: "\n").first
        guard let postmaster = first.flatMap({ pid_t($0) }) else { throw TestPostgresServer.Failure("no postmaster.pid") }
        var list = [postmaster]
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == postmaster { list.append(pid) }
        }
        return list
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server's processes: a server that accepts
    /// connections and never answers.
    public func signal(_ number: Int32) throws {
        for pid in try processes() { kill(pid, number) }
    }
}
