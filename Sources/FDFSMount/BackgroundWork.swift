import Synchronization

/// The state of the mount's background work (FileSystem+Background.swift): whether it is
/// stopped, when the last upload was committed (metadata writes wait for a pause), and the
/// cluster deletions in flight (the retry pass skips those: no second DELETE_FILE).
final class BackgroundWork: Sendable {
    private struct State {
        var stopped = false
        var lastUpload: ContinuousClock.Instant?
        var deleting: Set<String> = []
    }

    private let state = Mutex(State())

    var isStopped: Bool { state.withLock { $0.stopped } }

    func stop() { state.withLock { $0.stopped = true } }

    /// An upload was committed now.
    func uploadCommitted() { state.withLock { $0.lastUpload = .now } }

    /// When the last upload was committed.
    var lastUpload: ContinuousClock.Instant? { state.withLock { $0.lastUpload } }

    /// Claims the deletion of `fileID`: false when another task is deleting it.
    func beginDeleting(_ fileID: String) -> Bool { state.withLock { $0.deleting.insert(fileID).inserted } }

    func endDeleting(_ fileID: String) {
        _ = state.withLock { $0.deleting.remove(fileID) }
    }
}
