import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The write spool: local files that hold what is being written until it is uploaded, under
/// one hard byte cap taken before each write lands (ENOSPC when it would be exceeded).
public final class Spool: Sendable {
    public let dir: String
    public let capacity: Int64
    private let state = Mutex((used: Int64(0), counter: UInt64(0)))

    public init(dir: String, capacity: Int64) throws(FSError) {
        self.dir = dir
        self.capacity = capacity
        try POSIX.mkdirs(dir)
    }

    public var usedBytes: Int64 { state.withLock { $0.used } }

    /// Accounts for a spool file that survived a restart.
    public func adopt(bytes: Int64) {
        state.withLock { $0.used += bytes }
    }

    /// Reserves `bytes` more; throws ENOSPC when the cap would be exceeded.
    public func reserve(_ bytes: Int64) throws(FSError) {
        guard bytes > 0 else { return }
        try state.withLock { (s: inout (used: Int64, counter: UInt64)) throws(FSError) in
            guard s.used + bytes <= capacity else {
                throw FSError(.noSpace, "spool full: \(s.used) + \(bytes) > spool_size \(capacity)")
            }
            s.used += bytes
        }
    }

    public func release(_ bytes: Int64) {
        guard bytes > 0 else { return }
        state.withLock { $0.used = max(0, $0.used - bytes) }
    }

    /// Creates a new empty spool file (its name has no dot, so uploads take no extension from it); returns its path and an open read-write descriptor.
    public func create(ino: UInt64) throws(FSError) -> (path: String, fd: Int32) {
        let n = state.withLock { s -> UInt64 in
            s.counter += 1
            return s.counter
        }
        let path = "\(dir)/s\(ino)_\(POSIX.nowNanoseconds())_\(n)"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FSError.posix("create spool file \(path)") }
        return (path, fd)
    }

    /// Names of spool files present on disk.
    public func files() -> [String] {
        POSIX.list(dir).filter { $0.hasPrefix("s") }.map { "\(dir)/\($0)" }
    }
}
