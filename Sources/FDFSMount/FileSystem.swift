import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import CFastCRC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One open file.
struct Handle {
    var ino: UInt64
    var writable: Bool
    /// Reads come from the cluster, through this reader (read-ahead, cache, whole-file check).
    var reader: FileReader?
    /// Reads come from this write state's spool.
    var spool: WriteState?

    /// A handle on a file being written (reads come from its spool).
    init(ino: UInt64, writable: Bool, spool: WriteState) {
        self.ino = ino
        self.writable = writable
        self.spool = spool
    }

    /// A read-only handle on a cluster file.
    init(ino: UInt64, reader: FileReader) {
        self.ino = ino
        self.writable = false
        self.reader = reader
    }

    /// The cluster file a reader handle reads.
    var ref: FileRef? { reader?.ref }
}

/// The filesystem core: namespace, attributes, reads through a ``FileReader`` per handle
/// (Read/), writes through the spool, upload and commit. No kernel involved: the FUSE
/// adapter calls these methods, and so do tests.
public final class FDFSFileSystem: Sendable {
    public let options: MountOptions
    public let cluster: any ClusterBackend
    public let store: MappingStore
    public let cache: BlockCache
    public let spool: Spool
    public let fetcher: BlockFetcher
    /// Blocks for every reader: the cache, fetches in flight, read-ahead issuing.
    public let blocks: BlockStore
    public let budget: MemoryBudget
    public let metrics: MountMetrics
    public let stateDir: String
    let logger: Logger
    let startTime: Int64

    struct State {
        var handles: [UInt64: Handle] = [:]
        var nextHandle: UInt64 = 1
        var writes: [UInt64: WriteState] = [:]
        var directories: [UInt64: [DirectoryEntry]] = [:]
        var negative: [String: ContinuousClock.Instant] = [:]
        var groups: [String: GroupInfo] = [:]
        var groupsFetched: ContinuousClock.Instant?
        var stats: (FileSystemStats, ContinuousClock.Instant)?
        /// Open handles per cluster file ID (deletion waits for the last one).
        var openIDs: [String: Int] = [:]
        var deferredDeletes: Set<String> = []
        /// Detached inodes (unlinked or replaced while open), removed at their last close.
        var detached: Set<UInt64> = []
        /// Cluster deletions in flight (the background pass skips them: no second DELETE_FILE).
        var deleting: Set<String> = []
        /// Appender versions seen (size-mtime) per file ID.
        var appenderVersions: [String: String] = [:]
        var stopped = false
        /// When the last upload was committed (metadata writes wait for a pause in uploads).
        var lastUpload: ContinuousClock.Instant?
    }

    let state = Mutex(State())

    /// Opens (or creates) the state directory, the mapping store, the block cache and the
    /// spool. Call ``start()`` before serving requests.
    public init(options: MountOptions, cluster: any ClusterBackend, stateDir: String, logger: Logger = Logger(label: "fdfs.mount"), metrics: MountMetrics = MountMetrics()) throws(FSError) {
        self.options = options
        self.cluster = cluster
        self.stateDir = stateDir
        self.logger = logger
        self.metrics = metrics
        self.startTime = POSIX.nowNanoseconds()
        try POSIX.mkdirs(stateDir)
        self.store = try MappingStore(location: options.meta, stateDir: stateDir)
        self.cache = try BlockCache(dir: options.cacheDir ?? stateDir + "/cache", capacity: options.cacheSize, blockSize: options.blockSize, directIO: options.directCache, metrics: metrics, logger: logger)
        self.spool = try Spool(dir: options.spoolDir ?? stateDir + "/spool", capacity: options.spoolSize)
        self.budget = MemoryBudget(limit: options.memoryBudget)
        self.fetcher = BlockFetcher(cluster: cluster, metrics: metrics, logger: logger, stallTimeout: options.stallTimeout)
        self.blocks = BlockStore(cache: cache, fetcher: fetcher, budget: budget, metrics: metrics, logger: logger, blockSize: options.blockSize)
    }

    // MARK: Lifecycle

    /// Recovers from a previous run (pending uploads, abandoned names, stray spool files; on a
    /// shared namespace only when no other mount is alive, see FileSystem+Session.swift) and
    /// starts the background retrier.
    public func start() async {
        if beginSessionAndMayRecover() { await recover() }
        Task { [weak self] in
            while let self, !self.isStopped {
                try? await Task.sleep(for: .seconds(2))
                self.renewSession()
                await self.background()
            }
        }
        Task { [weak self] in
            while let self, !self.isStopped {
                try? await Task.sleep(for: .milliseconds(500))
                await self.writeMetadata(whenQuiet: true)
            }
        }
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Stops background work (the mount is going away). Pending uploads stay in the journal.
    public func stop() {
        state.withLock { $0.stopped = true }
        endSession()
    }

    /// One pass of background work: retry failed or abandoned uploads and cluster deletions,
    /// and give back idle read buffers once reads have stopped.
    public func background() async {
        BufferPool.shared.trim()
        let retry = state.withLock { s in s.writes.values.filter { $0.on { $0.needsRetry } } }
        for write in retry {
            do throws(FSError) {
                try await commit(write)
                releaseIfIdle(write)
            } catch {
                logger.warning("retrying upload of inode \(write.ino) failed: \(error)")
            }
        }
        await processDeletions()
        // Give freed heap pages back: NIO's socket buffers are freed in many thread arenas,
        // which glibc otherwise keeps (measured: ~200 MiB RSS after a 1 GiB read, ~30 MiB with this).
        fdfs_malloc_trim()
    }

    // MARK: Attributes

    func attributes(_ entry: Entry) -> FileAttributes {
        let umask = options.umask
        var mode: UInt32
        var uid = entry.uid, gid = entry.gid
        var size = entry.size
        var mtime = entry.mtime
        var ctime = entry.ctime
        switch entry.kind {
        case .root, .group, .storePath, .subdirHigh, .subdirLow:
            mode = UInt32(S_IFDIR) | ((options.readOnly || entry.kind == .root ? 0o555 : 0o755) & ~umask)
            uid = options.uid
            gid = options.gid
        case .generated:
            mode = UInt32(S_IFREG) | (0o444 & ~umask)
            uid = options.uid
            gid = options.gid
        case .file:
            mode = UInt32(S_IFREG) | (entry.mode & 0o7777)
        case .directory:
            mode = UInt32(S_IFDIR) | (entry.mode & 0o7777)
        case .symlink:
            mode = UInt32(S_IFLNK) | 0o777
        case .fifo, .socket, .characterDevice, .blockDevice, .hardLink:
            mode = entry.kind.typeBits | (entry.mode & 0o7777)
        }
        if entry.kind == .file, let write = state.withLock({ $0.writes[entry.ino] }) {
            write.on { w in
                size = w.size
                mtime = w.mtime
                ctime = max(ctime, w.changed)
            }
        }
        let atime = entry.kind == .file ? max(entry.atime, 0) : entry.atime
        return FileAttributes(
            ino: entry.ino, mode: mode, nlink: linkCount(entry), uid: uid, gid: gid, size: size,
            atime: atime, mtime: mtime, ctime: ctime, blockSize: Int32(min(options.blockSize, 1 << 20)), rdev: entry.rdev)
    }

    func timeout(_ entry: Entry) -> Double {
        switch entry.kind {
        case .storePath, .subdirHigh: return options.immutableTimeout
        case .generated:
            if let id = entry.fileID, let fileID = try? FileID(id), fileID.kind == .normal { return options.immutableTimeout }
            return options.attrTimeout
        default: return options.attrTimeout
        }
    }

    func reply(_ entry: Entry) -> EntryReply {
        EntryReply(attributes: attributes(entry), timeout: timeout(entry))
    }

    // MARK: Groups

    /// Groups from the tracker (cached for 30 s; the last known list when it cannot be asked).
    public func groups(refresh: Bool = false) async -> [String: GroupInfo] {
        if !refresh, let cached = state.withLock({ s -> [String: GroupInfo]? in
            guard let at = s.groupsFetched, ContinuousClock.now - at < .seconds(30) else { return nil }
            return s.groups
        }) {
            return cached
        }
        var list: [GroupInfo]
        do {
            list = try await cluster.listGroups()
            try? store.saveGroups(list)
        } catch {
            logger.warning("cannot list groups (\(error)); using the last known list")
            list = (try? store.savedGroups()) ?? []
        }
        let map = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        state.withLock { s in
            s.groups = map
            s.groupsFetched = .now
        }
        return map
    }

    func group(_ name: String) async -> GroupInfo? {
        if let known = state.withLock({ $0.groups[name] }) { return known }
        return await groups(refresh: state.withLock { $0.groupsFetched.map { ContinuousClock.now - $0 > .seconds(2) } ?? true })[name]
    }

    /// Names of the synthetic children of a synthetic directory.
    func syntheticChildren(_ entry: Entry) async -> [(String, EntryKind, String)] {
        let path = entry.fileID ?? ""
        switch entry.kind {
        case .root:
            return await groups().keys.sorted().map { ($0, .group, $0) }
        case .group:
            guard let info = await group(entry.name) else { return [] }
            return (0..<max(0, min(info.storePathCount, 256))).map { i in
                let name = "M" + FileID.hex(UInt8(i))
                return (name, .storePath, "\(path)/\(name)")
            }
        case .storePath, .subdirHigh:
            let groupName = String(path.split(separator: "/").first ?? "")
            guard let info = await group(groupName) else { return [] }
            let kind: EntryKind = entry.kind == .storePath ? .subdirHigh : .subdirLow
            return (0..<max(0, min(info.subdirCount, 256))).map { i in
                let name = FileID.hex(UInt8(i))
                return (name, kind, "\(path)/\(name)")
            }
        default:
            return []
        }
    }

    /// Is `name` a synthetic child of `entry`? Returns its kind and path.
    func syntheticChild(_ entry: Entry, _ name: String) async -> (EntryKind, String)? {
        let path = entry.fileID ?? ""
        func hexIndex(_ text: Substring) -> Int? {
            guard text.count == 2, text.allSatisfy({ ("0"..."9").contains($0) || ("A"..."F").contains($0) }) else { return nil }
            return Int(text, radix: 16)
        }
        switch entry.kind {
        case .root:
            guard (try? FileID.validateGroupName(name)) != nil, await group(name) != nil else { return nil }
            return (.group, name)
        case .group:
            guard name.count == 3, name.hasPrefix("M"), let i = hexIndex(name.dropFirst()), let info = await group(entry.name), i < info.storePathCount else { return nil }
            return (.storePath, "\(path)/\(name)")
        case .storePath, .subdirHigh:
            let groupName = String(path.split(separator: "/").first ?? "")
            guard let i = hexIndex(Substring(name)), let info = await group(groupName), i < info.subdirCount else { return nil }
            return (entry.kind == .storePath ? .subdirHigh : .subdirLow, "\(path)/\(name)")
        default:
            return nil
        }
    }

    func syntheticEntry(parent: UInt64, name: String, kind: EntryKind, path: String) -> Entry {
        Entry(ino: 0, parent: parent, name: name, kind: kind, mode: 0o755, uid: options.uid, gid: options.gid,
              atime: startTime, mtime: startTime, ctime: startTime, size: 0, fileID: path, target: nil, state: Entry.committed)
    }

    /// The generated-name row for a cluster file.
    func generatedEntry(parent: UInt64, id: FileID, size: Int64, time: Int64) -> Entry {
        let ns = time * 1_000_000_000
        return Entry(ino: 0, parent: parent, name: id.name, kind: .generated, mode: 0o444, uid: options.uid, gid: options.gid,
                     atime: ns, mtime: ns, ctime: ns, size: size, fileID: id.description, target: nil, state: Entry.committed)
    }

    /// Makes sure the synthetic directories of `id` (group/Mxx/HH/HH) have rows; returns the
    /// HH/HH directory's inode.
    func materializeDirectory(of id: FileID) throws(FSError) -> UInt64 {
        var parent = MappingStore.rootIno
        var path = ""
        let parts: [(String, EntryKind)] = [
            (id.group, .group), ("M" + FileID.hex(UInt8(id.storePathIndex)), .storePath),
            (FileID.hex(id.highDirectory), .subdirHigh), (FileID.hex(id.lowDirectory), .subdirLow),
        ]
        for (name, kind) in parts {
            path = path.isEmpty ? name : "\(path)/\(name)"
            let row = try store.insert(syntheticEntry(parent: parent, name: name, kind: kind, path: path), orExisting: true)
            guard row.kind == kind else { throw FSError(.exists, "\(path) is a user entry") }
            parent = row.ino
        }
        return parent
    }

    // MARK: Names

    /// Checks a name from the kernel: valid UTF-8, no NUL or '/', at most 255 bytes.
    public static func validName(_ bytes: [UInt8]) throws(FSError) -> String {
        guard bytes.count <= 255 else { throw FSError(.nameTooLong) }
        guard !bytes.isEmpty, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")),
              let name = String(validating: bytes, as: UTF8.self) else {
            throw FSError(.notFound, "invalid name")
        }
        return name
    }

    func entry(_ ino: UInt64) throws(FSError) -> Entry {
        guard let entry = try store.entry(ino) else { throw FSError(.notFound, "inode \(ino)") }
        return entry
    }

    // MARK: Lookup

    public func lookup(parent: UInt64, name: String) async throws(FSError) -> EntryReply {
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        let dir = try entry(parent)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if let child = try store.child(parent, name) {
            return reply(child)
        }
        if dir.kind.isSynthetic && dir.kind != .subdirLow {
            guard let (kind, path) = await syntheticChild(dir, name) else { throw FSError(.notFound) }
            return reply(try store.insert(syntheticEntry(parent: parent, name: name, kind: kind, path: path), orExisting: true))
        }
        if dir.kind == .subdirLow {
            return reply(try await lookupGenerated(dir, name))
        }
        throw FSError(.notFound)
    }

    /// A generated name not seen before: validate it, then ask the cluster.
    func lookupGenerated(_ dir: Entry, _ name: String) async throws(FSError) -> Entry {
        let path = dir.fileID ?? ""
        guard let slash = path.firstIndex(of: "/") else { throw FSError(.notFound) }
        let group = String(path[..<slash])
        let remote = String(path[path.index(after: slash)...]) + "/" + name
        guard let id = try? FileID(group: group, remoteFilename: remote) else { throw FSError(.notFound, "not a file ID") }
        let key = id.description
        let negative = state.withLock { s -> Bool in
            guard let until = s.negative[key] else { return false }
            if until > .now { return true }
            s.negative[key] = nil
            return false
        }
        if negative { throw FSError(.notFound, "recently missing") }
        metrics.add(metrics.lookupsRemote)
        var size = id.generated.size
        var time = Int64(id.generated.timestamp)
        do {
            let info = try await cluster.fileInfo(id)
            if id.kind != .normal {
                size = info.size
                time = info.createTimestamp
            }
        } catch {
            if error.code == .notFound {
                state.withLock { s in
                    if s.negative.count > 10_000 { s.negative.removeAll() }
                    s.negative[key] = .now + .milliseconds(Int64(options.negativeTimeout * 1000))
                }
                throw error
            }
            guard id.kind == .normal else { throw error }
            logger.warning("lookup of \(id): cluster unreachable (\(error)); trusting the name")
        }
        return try store.insert(generatedEntry(parent: dir.ino, id: id, size: size, time: time), orExisting: true)
    }

    public func getattr(_ ino: UInt64) async throws(FSError) -> EntryReply {
        reply(try entry(ino))
    }

    public func readlink(_ ino: UInt64) throws(FSError) -> String {
        let entry = try entry(ino)
        guard entry.kind == .symlink, let target = entry.target else { throw FSError(.invalid) }
        return target
    }

    // MARK: Directories

    public func opendir(_ ino: UInt64) async throws(FSError) -> UInt64 {
        let dir = try entry(ino)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        var list: [DirectoryEntry] = [
            DirectoryEntry(name: ".", ino: ino, type: UInt32(S_IFDIR)),
            DirectoryEntry(name: "..", ino: dir.ino == MappingStore.rootIno ? ino : dir.parent, type: UInt32(S_IFDIR)),
        ]
        var seen = Set<String>()
        if dir.kind.isSynthetic {
            let synthetic = await syntheticChildren(dir)
            if !synthetic.isEmpty {
                let rows = try store.insertAll(synthetic.map { syntheticEntry(parent: ino, name: $0.0, kind: $0.1, path: $0.2) })
                for row in rows {
                    seen.insert(row.name)
                    list.append(DirectoryEntry(name: row.name, ino: row.ino, type: row.kind.isDirectory ? UInt32(S_IFDIR) : UInt32(S_IFREG)))
                }
            }
        }
        for child in try store.children(ino) where !seen.contains(child.name) {
            // Rows of groups the tracker no longer lists are kept but not shown.
            if child.kind == .group, dir.kind == .root, !state.withLock({ $0.groups.isEmpty }) { continue }
            list.append(listed(child))
        }
        return register(listing: list)
    }

    /// A mapping-store row as a directory listing entry.
    func listed(_ child: Entry) -> DirectoryEntry {
        DirectoryEntry(name: child.name, ino: child.ino, type: child.kind.typeBits)
    }

    /// Keeps a listing for READDIR under a new directory handle.
    func register(listing list: [DirectoryEntry]) -> UInt64 {
        state.withLock { s in
            let fh = s.nextHandle
            s.nextHandle += 1
            s.directories[fh] = list
            return fh
        }
    }

    /// Entries from `offset` on (the offset of entry i is i + 1).
    public func readdir(_ handle: UInt64, offset: Int) throws(FSError) -> ArraySlice<DirectoryEntry> {
        guard let list = state.withLock({ $0.directories[handle] }) else { throw FSError(.badHandle) }
        guard offset < list.count else { return [] }
        return list[max(0, offset)...]
    }

    public func releasedir(_ handle: UInt64) {
        _ = state.withLock { $0.directories.removeValue(forKey: handle) }
    }

    // MARK: statfs

    public func statfs() async -> FileSystemStats {
        if let cached = state.withLock({ $0.stats }), ContinuousClock.now - cached.1 < .seconds(5) { return cached.0 }
        var total: Int64 = 0, free: Int64 = 0
        if let list = try? await cluster.listGroups() {
            for group in list {
                total += group.totalMB
                free += group.freeMB
            }
        }
        let stats = FileSystemStats(blockSize: 1 << 20, blocks: UInt64(max(total, 0)), freeBlocks: UInt64(max(free, 0)),
                                    files: 1 << 32, freeFiles: 1 << 31, nameMax: 255)
        state.withLock { $0.stats = (stats, .now) }
        return stats
    }

    // MARK: xattrs

    static let xattrNames = ["user.fdfs.file_id", "user.fdfs.crc32", "user.fdfs.source_ip", "user.fdfs.created"]

    public func listxattr(_ ino: UInt64) async throws(FSError) -> [String] {
        let entry = try entry(ino)
        if entry.kind == .root { return ["user.fdfs.state_dir", "user.fdfs.metrics"] }
        guard let text = entry.fileID, entry.kind == .file || entry.kind == .generated, let id = try? FileID(text) else { return [] }
        var names = Self.xattrNames
        if let meta = try? await cluster.getMetadata(id) {
            names += meta.map { "user.fdfs.meta.\($0.name)" }
        }
        return names
    }

    public func getxattr(_ ino: UInt64, name: String) async throws(FSError) -> [UInt8] {
        guard name.hasPrefix("user.fdfs.") else { throw FSError(.noData) }
        let entry = try entry(ino)
        if entry.kind == .root, name == "user.fdfs.state_dir" { return Array(stateDir.utf8) }
        if entry.kind == .root, name == "user.fdfs.metrics" { return Array(renderMetrics().utf8) }
        guard let text = entry.fileID, entry.kind == .file || entry.kind == .generated, let id = try? FileID(text) else {
            throw FSError(.noData)
        }
        switch name {
        case "user.fdfs.file_id": return Array(id.description.utf8)
        case "user.fdfs.crc32":
            let hex = String(id.generated.crc32, radix: 16)
            return Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
        case "user.fdfs.source_ip": return Array(id.generated.source.description.utf8)
        case "user.fdfs.created": return Array(String(id.generated.timestamp).utf8)
        default:
            let prefix = "user.fdfs.meta."
            guard name.hasPrefix(prefix) else { throw FSError(.noData) }
            let key = String(name.dropFirst(prefix.count))
            guard let value = try await cluster.getMetadata(id)[key] else { throw FSError(.noData) }
            return Array(value.utf8)
        }
    }

    public func setxattr(_ ino: UInt64, name: String, value: [UInt8]) async throws(FSError) {
        let prefix = "user.fdfs.meta."
        guard name.hasPrefix(prefix) else { throw FSError(.notSupported) }
        if options.readOnly { throw FSError(.readOnly) }
        let entry = try entry(ino)
        guard entry.kind == .file, let text = entry.fileID, let id = try? FileID(text) else { throw FSError(.notSupported) }
        guard let string = String(validating: value, as: UTF8.self) else { throw FSError(.invalid) }
        var metadata = FDFSMetadata()
        do { try metadata.set(String(name.dropFirst(prefix.count)), string) } catch { throw FSError(.invalid, error.description) }
        try await cluster.setMetadata(id, metadata, merge: true)
    }
}
