import Synchronization

/// Generated names the cluster recently said do not exist: a LOOKUP of one within
/// `negative_timeout` is ENOENT without asking again.
final class NegativeCache: Sendable {
    private let missing = Mutex<[String: ContinuousClock.Instant]>([:])
    /// How long a miss is remembered.
    let timeout: Duration
    /// Past this many remembered misses, all are forgotten (a bound, not an LRU).
    static let limit = 10_000

    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// Was `fileID` found missing within the timeout? An expired miss is forgotten.
    func isMissing(_ fileID: String) -> Bool {
        missing.withLock { m in
            guard let until = m[fileID] else { return false }
            if until > .now { return true }
            m[fileID] = nil
            return false
        }
    }

    /// The cluster said `fileID` does not exist.
    func noteMissing(_ fileID: String) {
        missing.withLock { m in
            if m.count > Self.limit { m.removeAll() }
            m[fileID] = .now + timeout
        }
    }
}
