import Synchronization

/// Answers to the reads libfuse threads ask most (an inode by number, a name in a directory),
/// kept for a short time so that only misses reach a remote engine (PostgreSQL). SQLite reads
/// its local file directly and has no cache.
///
/// The rule: an answer from the cache is at most ``ttl`` old, which is the time the kernel
/// itself keeps entries and attributes (`attr_timeout=`, default 1 s). So a change made by
/// another mount on the same database is seen within `attr_timeout=`, as it would be if the
/// kernel had cached it; a change made through this store empties the cache (every write goes
/// through ``MappingStore/with(_:)``, which calls ``invalidate()`` after it), so this mount
/// always sees its own changes at once.
///
/// A fill races with a write: the filler reads ``generation`` before its query and stores the
/// answer only if no write ended meanwhile.
final class MetadataCache: Sendable {
    struct Key: Hashable {
        let parent: UInt64
        let name: String
    }

    private struct Item<Value> {
        let value: Value
        let until: ContinuousClock.Instant
    }

    private struct State {
        var generation: UInt64 = 0
        var inodes: [UInt64: Item<Entry>] = [:]
        /// nil value: the name does not exist (a negative answer).
        var names: [Key: Item<Entry?>] = [:]
    }

    let ttl: Duration
    /// Entries kept at most (the cache empties when full: it is refilled by the next listing).
    let limit: Int
    private let state = Mutex(State())

    init(ttl: Double, limit: Int = 100_000) {
        self.ttl = .nanoseconds(Int64(ttl * 1e9))
        self.limit = limit
    }

    /// The generation to pass to the fills that follow a query.
    var generation: UInt64 { state.withLock { $0.generation } }

    func entry(_ ino: UInt64) -> Entry? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard let item = s.inodes[ino], item.until > now else { return nil }
            return item.value
        }
    }

    /// .some(nil): the name is known not to exist.
    func child(_ parent: UInt64, _ name: String) -> Entry?? {
        let now = ContinuousClock.now
        return state.withLock { s -> Entry?? in
            guard let item = s.names[Key(parent: parent, name: name)], item.until > now else { return .none }
            return .some(item.value)
        }
    }

    /// Stores inode rows (`inodes`) and name answers (`names`) read at `generation`.
    func fill(_ generation: UInt64, inodes: [Entry] = [], names: [(UInt64, String, Entry?)] = []) {
        let until = ContinuousClock.now + ttl
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.inodes.count + s.names.count + inodes.count + names.count > limit {
                s.inodes.removeAll(keepingCapacity: true)
                s.names.removeAll(keepingCapacity: true)
            }
            for entry in inodes { s.inodes[entry.ino] = Item(value: entry, until: until) }
            for (parent, name, entry) in names { s.names[Key(parent: parent, name: name)] = Item(value: entry, until: until) }
        }
    }

    /// Forgets everything (a write ended).
    func invalidate() {
        state.withLock { s in
            s.generation &+= 1
            s.inodes.removeAll(keepingCapacity: true)
            s.names.removeAll(keepingCapacity: true)
        }
    }
}
