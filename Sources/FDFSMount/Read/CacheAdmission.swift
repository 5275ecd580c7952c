import Synchronization

/// `-o cache=`: which fetched blocks the on-disk block cache keeps.
public enum CacheMode: String, Sendable, CaseIterable {
    /// Every fetched block (the behaviour before `cache=` existed).
    case always
    /// Blocks that are read again, blocks of small files and blocks a random reader asked for;
    /// a large file streamed once is not written to the cache on the way (the default).
    case reread
    /// Nothing: every block not in the kernel's page cache is fetched from the cluster.
    case never

    /// Files up to this size are always cached in `reread` (they cost little room, and small
    /// files are what is read again).
    public static let smallFile: Int64 = 16 << 20
}

/// Why a block is fetched, as far as admission cares.
public struct FetchReason: Sendable {
    /// Size of the whole file.
    public var fileSize: Int64
    /// The fetch follows a sequential stream (read-ahead, or a READ continuing the reads
    /// before it); false for a random reader.
    public var sequential: Bool

    public init(fileSize: Int64, sequential: Bool) {
        self.fileSize = fileSize
        self.sequential = sequential
    }
}

/// The state behind ``BlockStore/shouldCache(_:_:)`` in `cache=reread`: the blocks fetched
/// without being cached, so that a second fetch of one admits it. Bounded: when it holds
/// `limit` keys it starts over (a block then needs two more fetches to be admitted).
struct SeenBlocks: Sendable {
    let limit: Int
    private var keys = Set<BlockKey>()

    init(limit: Int = 1 << 16) { self.limit = limit }

    /// Records that a stream read `key` without fetching it; false when it had been fetched
    /// or streamed before (then the next fetch of it is admitted).
    mutating func firstSight(_ key: BlockKey) -> Bool {
        if keys.contains(key) { return false }
        remember(key)
        return true
    }

    /// Records a fetch of `key`; true when it had been fetched before.
    mutating func fetchedAgain(_ key: BlockKey) -> Bool {
        if keys.remove(key) != nil { return true }
        remember(key)
        return false
    }

    private mutating func remember(_ key: BlockKey) {
        if keys.count >= limit { keys.removeAll(keepingCapacity: true) }
        keys.insert(key)
    }
}
