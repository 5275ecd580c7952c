import FDFSProtocol

/// Appender files change in place (APPEND, MODIFY, TRUNCATE) at their source storage and reach
/// the group's other members by asynchronous replication, so another member's copy can be older
/// than the last change that `close()` acknowledged. The tracker names such a member for reads
/// and for changes while the source is down. The mount therefore reads and changes an appender
/// file only at its source: a read finds no other storage to fail over to (EIO), and a change
/// is uploaded as a whole new appender file instead (see ``FDFSFileSystem/commit(_:)``).
extension FileID {
    /// Whether only the source may serve and change this file (appender files whose source
    /// is an IPv4 address; a numeric storage id cannot be matched to an address).
    var isPinnedToSource: Bool {
        guard kind == .appender, case .ipv4 = generated.source else { return false }
        return true
    }

    /// Is `endpoint` the storage the file was created on?
    func isSource(_ endpoint: StorageEndpoint) -> Bool {
        generated.source.description == endpoint.ip
    }

    /// The storages that may serve this file out of `named`: its source only when pinned.
    func servers(among named: [StorageEndpoint]) -> [StorageEndpoint] {
        isPinnedToSource ? named.filter(isSource) : named
    }
}

extension FDFSFileSystem {
    /// The source storage of a pinned appender file, as the tracker names it now (QUERY_FETCH_ALL
    /// names the source while it is up, another member otherwise); EIO when it is not named.
    func appenderSource(_ id: FileID) async throws(FSError) -> StorageEndpoint {
        let named = try await fetcher.replicas(id, refresh: true)
        guard let source = id.servers(among: named).first else {
            throw FSError(.io, "the source storage \(id.generated.source) of appender file \(id) is not available (named: \(named)); another member's copy may be older than its last change")
        }
        return source
    }
}
