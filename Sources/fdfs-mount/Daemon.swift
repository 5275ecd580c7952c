#if canImport(Glibc)
import Glibc
#endif

/// Going to the background so that the shell learns whether the mount started.
///
/// libfuse's `fuse_daemonize` lets the command return as soon as the background process exists,
/// before the mapping store is opened: a mount whose metadata engine was unreachable, or whose
/// state directory was unusable, returned 0 and printed nothing (the reason went to the state
/// directory's log). Here the command forks first, while it has no threads, and waits for the
/// background process to report: ready (the file system serves, exit 0), or why not (printed,
/// exit 1); a background process that ends without a word is reported as such.
enum Daemon {
    /// The write end of the report pipe, in the background process until it has reported.
    nonisolated(unsafe) private static var reportFD: Int32 = -1

    /// Forks. In the command's process, waits for the report and returns the exit code; in
    /// the background process returns nil after leaving the terminal's session, with stdin and
    /// stdout on /dev/null and stderr appended to `log`.
    static func start(log: String) -> Int32? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            perror("fdfs-mount: pipe")
            return 1
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let pid = fork()
        if pid < 0 {
            perror("fdfs-mount: fork")
            return 1
        }
        if pid > 0 {
            close(fds[1])
            return waitForReport(fds[0], log: log)
        }
        close(fds[0])
        reportFD = fds[1]
        setsid()
        _ = chdir("/")
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            close(null)
        }
        let logFD = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if logFD >= 0 {
            dup2(logFD, 2)
            close(logFD)
        }
        return nil
    }

    /// The background process serves.
    static func ready() { report("ok") }

    /// The background process will not serve, because of `reason`.
    static func failed(_ reason: String) { report("error: " + reason) }

    private static func report(_ text: String) {
        guard reportFD >= 0 else { return }
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(reportFD, $0.baseAddress, $0.count) }
        close(reportFD)
        reportFD = -1
    }

    private static func waitForReport(_ fd: Int32, log: String) -> Int32 {
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { text += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fd)
        let answer = String(decoding: text, as: UTF8.self)
        if answer == "ok" { return 0 }
        let message = answer.hasPrefix("error: ") ? String(answer.dropFirst(7)) : "the background process ended during start-up; see \(log)"
        let line = Array("fdfs-mount: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        return 1
    }
}
