import NIOPosix

/// Store calls from async code. A PostgreSQL store blocks its caller for a network round trip
/// (the sync bridge, see ``PostgresMetadataConnection``); called from a Task, that would hold
/// one of Swift's few cooperative threads. ``async(_:)`` runs such calls on a thread pool of
/// their own; SQLite, which reads a local file, runs them inline.
extension MappingStore {
    /// The threads blocking store calls of async code wait on.
    static let blockingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    /// Runs `body` with this store, off the cooperative pool when the engine is PostgreSQL.
    public func async<T: Sendable>(_ body: @escaping @Sendable (MappingStore) throws(FSError) -> T) async throws(FSError) -> T {
        guard engine == .postgres else { return try body(self) }
        do {
            return try await Self.blockingPool.runIfActive { try body(self) }
        } catch let error as FSError {
            throw error
        } catch {
            throw FSError(.io, "metadata call: \(error)")
        }
    }
}
