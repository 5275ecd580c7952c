import FDFSProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A member of our group as the tracker's beat responses describe it.
public struct GroupMember: Hashable, Sendable {
    public var id: String
    public var ip: String
    public var port: Int
    public var status: UInt8

    public init(id: String, ip: String, port: Int, status: UInt8) {
        self.id = id
        self.ip = ip
        self.port = port
        self.status = status
    }
}

/// Everything the parts of a running storage share: settings, store paths, the binlog, and
/// the state learned at run time (our IP, the tracker's parameters, counters, group members,
/// replication progress), each behind a lock.
public final class StorageContext: Sendable {
    public let configuration: StorageConfiguration
    public let store: StorePaths
    public let binlog: BinlogWriter
    public let logger: Logger
    public let eventLoopGroup: any EventLoopGroup
    /// Operations, bytes, connections, binlog records and replication lag (`/metrics`).
    public let metrics = StorageMetrics()
    let threadPool: NIOThreadPool
    /// One thread for the writes whose order matters: binlog appends, in the order they are
    /// asked for, and the init flag file.
    let binlogQueue: NIOThreadPool
    /// Threads for short file system calls (open, pwrite, fstat, link, rename, statvfs, binlog
    /// reads), apart from ``threadPool``, where long jobs (metadata merges, whole-file CRCs) run,
    /// so an upload never queues behind them.
    let fileIOPool: NIOThreadPool
    /// Running checksums of appender files being appended to (REGENERATE without a re-read).
    let appenderChecksums = AppenderChecksums()
    /// Appender files regenerated here, old name to new (for the sync of appends sent late).
    let regeneratedAppenders = RegeneratedAppenders()
    let startTime = Int64(Date().timeIntervalSince1970)

    struct State {
        var myIP: String?
        var reserved = ReservedSpace.none
        var syncFileMaxDelay = 86400
        var counters = StorageCounters()
        var countersChanged = true
        /// Newest source timestamp received from each source storage (for SYNC_REPORT).
        var syncedFrom: [String: Int64] = [:]
        var syncedChanged = false
        var memberLists = GroupMemberLists()
        /// The union of the trackers' member lists (see ``GroupMemberLists``).
        var members: [GroupMember] = []
        var myStatus: UInt8?
        var initFlag = InitFlag()
        var negotiating = false
    }
    private let state = Mutex(State())

    public init(configuration: StorageConfiguration, logger: Logger, eventLoopGroup: any EventLoopGroup, threadPool: NIOThreadPool) throws(StorageError) {
        self.configuration = configuration
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.threadPool = threadPool
        store = try StorePaths(configuration: configuration)
        binlog = try BinlogWriter(directory: configuration.syncDirectory)
        if let bind = configuration.bindAddress, GeneratedName.Source(ipv4: bind) != nil, bind != "0.0.0.0" {
            state.withLock { $0.myIP = bind }
        }
        let path = configuration.dataDirectory + "/.data_init_flag"
        var flag = InitFlag.load(path: path) ?? InitFlag()
        if flag.joinTime == 0 {
            flag.joinTime = Int64(Date().timeIntervalSince1970)
            do { try flag.write(path: path) } catch { throw StorageError(.EIO, "cannot write \(path): \(error.localizedDescription)") }
        }
        state.withLock { $0.initFlag = flag }
        binlogQueue = NIOThreadPool(numberOfThreads: 1)
        binlogQueue.start()
        fileIOPool = NIOThreadPool(numberOfThreads: 4)
        fileIOPool.start()
    }

    /// Local address for outgoing connections: bind_addr when it is a specific IPv4 address.
    var outgoingBindAddress: String? {
        guard let bind = configuration.bindAddress, bind != "0.0.0.0", GeneratedName.Source(ipv4: bind) != nil else { return nil }
        return bind
    }

    var initFlagPath: String { configuration.dataDirectory + "/.data_init_flag" }  // also in init

    var initFlag: InitFlag { state.withLock { $0.initFlag } }

    /// Changes the init flag and writes it to its file on the binlog's thread. Each write
    /// there takes the newest flag, one at a time, so the file never goes back to an older one.
    func updateInitFlag(_ change: (inout InitFlag) -> Void) async {
        state.withLock { change(&$0.initFlag) }
        let path = initFlagPath
        do {
            try await binlogQueue.runIfActive { try self.initFlag.write(path: path) }
        } catch {
            logger.error("cannot write \(path): \(error)")
        }
    }

    /// Claims the one-time initial-sync negotiation (SYNC_DEST_REQ); false if another tracker
    /// connection is doing it or it is done.
    func claimNegotiation() -> Bool {
        state.withLock { state in
            guard !state.initFlag.syncOldDone, !state.negotiating else { return false }
            state.negotiating = true
            return true
        }
    }

    func endNegotiation() { state.withLock { $0.negotiating = false } }

    /// Runs long blocking work (metadata files, whole-file checksums) on the blocking thread
    /// pool, off the event loops and the cooperative pool.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threadPool.runIfActive(body)
    }

    /// Runs a short file system call (open, pwrite, fstat, link, rename, statvfs, a binlog read)
    /// on the file I/O threads, off the event loops and the cooperative pool.
    func fileIO<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await fileIOPool.runIfActive(body)
    }

    /// Closes a descriptor on the file I/O threads, first truncating the file to `size` if
    /// given (on the caller's thread if those threads are already stopped).
    func closeFile(_ fd: CInt, truncatingTo size: Int64? = nil) async {
        let work: @Sendable () -> Void = {
            if let size { ftruncate(fd, off_t(size)) }
            close(fd)
        }
        do { try await fileIO(work) } catch { work() }
    }

    /// Appends a binlog record on the binlog's own thread. Appends run one at a time in the
    /// order they were asked for, and the caller resumes once the line is written, so a
    /// reply sent after it (and any later operation on the same file) comes after the record.
    func appendToBinlog(_ record: BinlogRecord) async throws {
        let binlog = self.binlog
        try await binlogQueue.runIfActive { try binlog.append(record) }
        metrics.binlogRecords.increment()
    }

    /// Stops the binlog thread (after the last append), closes the binlog, and stops the file
    /// I/O threads.
    func closeBinlog() async {
        try? await binlogQueue.shutdownGracefully()
        binlog.close()
        try? await fileIOPool.shutdownGracefully()
    }

    // MARK: Identity and tracker parameters

    /// The IPv4 address this storage is known by (bind_addr, or what the tracker saw).
    public var myIP: String? { state.withLock { $0.myIP } }
    func setMyIP(_ ip: String) { state.withLock { $0.myIP = ip } }

    public var reservedSpace: ReservedSpace {
        get { state.withLock { $0.reserved } }
    }
    func setReservedSpace(_ value: ReservedSpace) { state.withLock { $0.reserved = value } }

    var syncFileMaxDelay: Int { state.withLock { $0.syncFileMaxDelay } }
    func setSyncFileMaxDelay(_ value: Int) { state.withLock { $0.syncFileMaxDelay = value } }

    var myStatus: UInt8? {
        get { state.withLock { $0.myStatus } }
    }
    func setMyStatus(_ value: UInt8) { state.withLock { $0.myStatus = value } }

    // MARK: Counters

    func count(_ name: String, success: Bool, bytes: Int64? = nil) {
        metrics.operation(name, success: success, bytes: bytes)
        state.withLock { state in
            state.counters.record(name, success: success)
            if let bytes, let pair = Self.bytePair[name] { state.counters.record(pair, success: success, amount: bytes) }
            if success && Self.sourceUpdates.contains(name) { state.counters.lastSourceUpdate = Int64(Date().timeIntervalSince1970) }
            state.countersChanged = true
        }
    }

    func countSyncIn(bytes: Int64, success: Bool) {
        if success { metrics.syncBytesIn.increment(by: bytes) }
        state.withLock { state in
            state.counters.record("sync_in_bytes", success: success, amount: bytes)
            state.counters.lastSyncUpdate = Int64(Date().timeIntervalSince1970)
            state.countersChanged = true
        }
    }

    func countSyncOut(bytes: Int64) {
        metrics.syncBytesOut.increment(by: bytes)
        state.withLock { state in
            state.counters.record("sync_out_bytes", success: true, amount: bytes)
            state.countersChanged = true
        }
    }

    func connectionOpened() {
        metrics.connectionsOpen.increment()
        state.withLock { state in
            state.counters.connectionAllocCount += 1
            state.counters.connectionCurrentCount += 1
            state.counters.connectionMaxCount = max(state.counters.connectionMaxCount, state.counters.connectionCurrentCount)
            state.countersChanged = true
        }
    }

    func connectionClosed() {
        metrics.connectionsOpen.decrement()
        state.withLock { state in
            state.counters.connectionCurrentCount -= 1
            state.countersChanged = true
        }
    }

    /// The counters if they changed since the last call (for BEAT).
    func takeChangedCounters() -> StorageCounters? {
        state.withLock { state in
            guard state.countersChanged else { return nil }
            state.countersChanged = false
            var counters = state.counters
            counters.lastSyncedTimestamp = state.syncedFrom.values.min() ?? 0
            counters.lastHeartBeatTime = Int64(Date().timeIntervalSince1970)
            return counters
        }
    }

    public var counters: StorageCounters { state.withLock { $0.counters } }

    static let bytePair: [String: String] = ["upload": "upload_bytes", "append": "append_bytes", "modify": "modify_bytes", "download": "download_bytes"]
    static let sourceUpdates: Set<String> = ["upload", "append", "modify", "truncate", "set_meta", "delete", "create_link"]

    // MARK: Replication state

    /// Records that a replica operation from `source` with source timestamp `timestamp` was applied.
    func recordSynced(from source: String, timestamp: Int64) {
        state.withLock { state in
            if timestamp > state.syncedFrom[source] ?? 0 {
                state.syncedFrom[source] = timestamp
                state.syncedChanged = true
            }
        }
    }

    /// The per-source timestamps if they changed since the last call (for SYNC_REPORT).
    func takeChangedSyncTimestamps() -> [String: Int64]? {
        state.withLock { state in
            guard state.syncedChanged else { return nil }
            state.syncedChanged = false
            return state.syncedFrom
        }
    }

    /// The members of our group that any tracker lists, sorted by id (see ``GroupMemberLists``
    /// for the status when trackers disagree).
    public var members: [GroupMember] { state.withLock { $0.members } }

    /// Records the member list `tracker` sent. One list per tracker, used as their union, so a
    /// member does not flicker in and out with whichever tracker answered last.
    func setMembers(_ members: [GroupMember], from tracker: String) {
        state.withLock { $0.members = $0.memberLists.update(members, from: tracker) }
    }

    /// True when a storage at `ip` is in some tracker's latest member list of our group
    /// (members deleted or whose IP changed do not count).
    func isGroupMember(ip: String) -> Bool {
        state.withLock { state in
            state.members.contains { $0.ip == ip && $0.status != StorageStatus.deleted.rawValue && $0.status != StorageStatus.ipChanged.rawValue }
        }
    }

    /// The status the tracker holds for a member.
    func memberStatus(ip: String, port: Int) -> UInt8? {
        state.withLock { $0.members.first { $0.ip == ip && $0.port == port }?.status }
    }
}
