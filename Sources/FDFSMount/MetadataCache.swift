import Synchronization

/// Answers to the reads libfuse threads ask most (an inode by number, a name in a directory),
/// kept for a short time so that only misses reach a remote engine (PostgreSQL). SQLite reads
/// its local file directly and has no cache.
///
/// The rule: an answer from the cache is at most ``ttl`` old, which is the time the kernel
/// itself keeps entries and attributes (`attr_timeout=`, default 1 s). So a change made by
/// another mount on the same database is seen within `attr_timeout=`, as it would be if the
/// kernel had cached it; a change made through this store empties the cache (every write goes
/// through ``MappingStore/with(_:)``, which calls ``invalidate()`` after it), or, for the
/// changes that say exactly which rows they touched (a create, an empty file's commit, another
/// mount's change heard by LISTEN), forgets those (``forget(inodes:names:)``), so this mount
/// always sees its own changes at once.
///
/// A name is kept as the inode number it stands for, and answered only while that inode's row
/// is cached too: forgetting an inode forgets every name of it. A link count (a file's hard
/// links, a directory's user subdirectories) is kept per inode and goes with it.
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
        /// The inode a name stands for; nil value: the name does not exist (a negative answer).
        var names: [Key: Item<UInt64?>] = [:]
        /// Hard links of a file, user subdirectories of a directory.
        var links: [UInt64: Item<Int>] = [:]

        mutating func removeAll() {
            inodes.removeAll(keepingCapacity: true)
            names.removeAll(keepingCapacity: true)
            links.removeAll(keepingCapacity: true)
        }
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

    /// .some(nil): the name is known not to exist. A name found is its inode's row seen
    /// through that name (a hard link's parent and name).
    func child(_ parent: UInt64, _ name: String) -> Entry?? {
        let now = ContinuousClock.now
        return state.withLock { s -> Entry?? in
            guard let item = s.names[Key(parent: parent, name: name)], item.until > now else { return .none }
            guard let ino = item.value else { return .some(nil) }
            guard let inode = s.inodes[ino], inode.until > now else { return .none }
            var seen = inode.value
            seen.parent = parent
            seen.name = name
            return .some(seen)
        }
    }

    /// The link count of inode `ino` (see the type), when cached.
    func links(_ ino: UInt64) -> Int? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard let item = s.links[ino], item.until > now else { return nil }
            return item.value
        }
    }

    /// Stores inode rows (`inodes`), name answers (`names`; a name found must come with its
    /// inode's row in `inodes`) and link counts read at `generation`.
    func fill(_ generation: UInt64, inodes: [Entry] = [], names: [(UInt64, String, Entry?)] = [], links: [(UInt64, Int)] = []) {
        let until = ContinuousClock.now + ttl
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.inodes.count + s.names.count + s.links.count + inodes.count + names.count + links.count > limit { s.removeAll() }
            for entry in inodes { s.inodes[entry.ino] = Item(value: entry, until: until) }
            for (parent, name, entry) in names { s.names[Key(parent: parent, name: name)] = Item(value: entry?.ino, until: until) }
            for (ino, count) in links { s.links[ino] = Item(value: count, until: until) }
        }
    }

    /// Forgets everything (a write ended).
    func invalidate() {
        state.withLock { s in
            s.generation &+= 1
            s.removeAll()
        }
    }

    /// Forgets what a change of the rows `inodes` and of the names `names` made stale: those
    /// rows (with their link counts and every name of them), those names, and the inodes the
    /// names stood for. Fills of queries that began before are dropped, as for ``invalidate()``.
    func forget(inodes: [UInt64] = [], names: [(UInt64, String)] = []) {
        state.withLock { s in
            s.generation &+= 1
            for (parent, name) in names {
                if let ino = s.names.removeValue(forKey: Key(parent: parent, name: name))?.value ?? nil {
                    s.inodes.removeValue(forKey: ino)
                    s.links.removeValue(forKey: ino)
                }
            }
            for ino in inodes {
                s.inodes.removeValue(forKey: ino)
                s.links.removeValue(forKey: ino)
            }
        }
    }
}
