import Synchronization

/// The version (size-mtime) last seen of each appender, slave or pinned file opened for
/// reading: when it changes, the blocks cached for the old version are dropped.
final class AppenderVersions: Sendable {
    private let versions = Mutex<[String: String]>([:])

    /// Records `version` of `fileID`; returns the version seen before, if any.
    func note(_ fileID: String, version: String) -> String? {
        versions.withLock { v in
            defer { v[fileID] = version }
            return v[fileID]
        }
    }
}
