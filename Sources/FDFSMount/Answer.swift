/// What an operation answers: `.done` when the mapping store and local disk were enough
/// (the FUSE adapter replies on the libfuse thread), `.needsCluster` with the rest of the
/// work when the tracker or a storage server must be asked (the adapter runs it in a Task).
public enum Answer<Reply: Sendable>: Sendable {
    case done(Reply)
    case needsCluster(@Sendable () async throws(FSError) -> Reply)

    /// The reply, running the cluster part if there is one (tests, and callers already in a Task).
    public var value: Reply {
        get async throws(FSError) {
            switch self {
            case .done(let reply): return reply
            case .needsCluster(let work): return try await work()
            }
        }
    }
}
