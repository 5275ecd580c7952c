import FDFSClient
import FDFSMount
import FDFSProtocol
import Foundation
import NIOCore
import Synchronization
import class FDFSTestSupport.TemporaryDirectory

/// An in-memory FastDFS cluster for driving the mount core without network or kernel.
final class MemoryCluster: ClusterBackend {
    struct State {
        var files: [String: [UInt8]] = [:]
        var metadata: [String: FDFSMetadata] = [:]
        var mtimes: [String: Int64] = [:]
        var calls: [String: Int] = [:]
        var failUploads: FSError?
        /// APPEND fails with this after `appendsBeforeFailure` successful ones.
        var failAppends: FSError?
        var appendsBeforeFailure = 0
        var corruptReads = false
        /// Reads from 127.0.0.1 fail at once / hang for 30 s (127.0.0.2 keeps working).
        var failFirstReplica = false
        var stallFirstReplica = false
        var counter: UInt32 = 0
        /// QUERY_FETCH_ALL names only 127.0.0.1 (a fresh file whose replica the tracker does
        /// not know of yet); 127.0.0.2 is still a member that holds every file.
        var onlySourceNamed = false
        /// The source (127.0.0.1) is down: the tracker names the member 127.0.0.2 for reads,
        /// file info and changes, and 127.0.0.2 serves ``memberCopies`` where it lags.
        var sourceDown = false
        /// What the member 127.0.0.2 holds of a file whose last changes it has not synced yet.
        var memberCopies: [String: [UInt8]] = [:]
    }

    let state = Mutex(State())
    let groups: [GroupInfo]
    /// Holds MODIFY calls while closed.
    let modifyGate = Gate()

    init(groups: [GroupInfo] = [GroupInfo(name: "group1", storePathCount: 2, subdirCount: 256, totalMB: 1000, freeMB: 500)]) {
        self.groups = groups
    }

    func count(_ call: String) -> Int { state.withLock { $0.calls[call] ?? 0 } }
    private func note(_ call: String) { state.withLock { $0.calls[call, default: 0] += 1 } }
    func bytes(_ id: FileID) -> [UInt8]? { state.withLock { $0.files[id.description] } }
    func meta(_ id: FileID) -> FDFSMetadata? { state.withLock { $0.metadata[id.description] } }
    var fileCount: Int { state.withLock { $0.files.count } }

    /// Stores bytes as the cluster would, under a fresh generated name.
    func put(_ bytes: [UInt8], ext: String = "bin", appender: Bool = false, storePath: Int = 0) -> FileID {
        let n = state.withLock { s -> UInt32 in
            s.counter += 1
            return s.counter
        }
        let generated = GeneratedName(source: .ipv4(127, 0, 0, 1), timestamp: 1_700_000_000 + n, size: Int64(bytes.count),
                                      crc32: CRC32.checksum(bytes), appender: appender, randomBits: n)
        let digits = (0..<7).map { _ in UInt8.random(in: 0...9) }
        let remote = "M" + FileID.hex(UInt8(storePath)) + "/0A/" + FileID.hex(UInt8(n & 0xFF)) + "/" + generated.encoded + GeneratedName.formattedExtension(ext, digits: digits)
        let id = try! FileID(group: "group1", remoteFilename: remote)
        state.withLock { s in
            s.files[id.description] = bytes
            s.mtimes[id.description] = Int64(generated.timestamp)
        }
        return id
    }

    func listGroups() async throws(FSError) -> [GroupInfo] {
        note("listGroups")
        return groups
    }

    func fileInfo(_ id: FileID) async throws(FSError) -> FileInfo {
        note("fileInfo")
        if member(id), let copy = state.withLock({ $0.memberCopies[id.description] }) {
            return FileInfo(size: Int64(copy.count), createTimestamp: 1, crc32: 0, sourceIP: "127.0.0.1")
        }
        guard let (bytes, mtime) = state.withLock({ s in s.files[id.description].map { ($0, s.mtimes[id.description] ?? 0) } }) else {
            throw FSError(.notFound, "no \(id)")
        }
        return FileInfo(size: Int64(bytes.count), createTimestamp: mtime, crc32: 0, sourceIP: "127.0.0.1")
    }

    func fileInfo(_ id: FileID, on endpoint: StorageEndpoint) async throws(FSError) -> FileInfo {
        note("fileInfoOn")
        if endpoint.ip == "127.0.0.1", state.withLock({ $0.sourceDown }) { throw FSError(.unreachable, "source down") }
        if endpoint.ip == "127.0.0.2", let copy = state.withLock({ $0.memberCopies[id.description] }) {
            return FileInfo(size: Int64(copy.count), createTimestamp: 1, crc32: 0, sourceIP: "127.0.0.1")
        }
        return try await fileInfo(id)
    }

    /// The tracker names the member while the source is down: reads, info and changes go there.
    private func member(_ id: FileID) -> Bool {
        state.withLock { $0.sourceDown && $0.memberCopies[id.description] != nil }
    }

    func replicas(_ id: FileID) async throws(FSError) -> [StorageEndpoint] {
        note("replicas")
        if state.withLock({ $0.sourceDown }) { return [StorageEndpoint(ip: "127.0.0.2", port: 1)] }
        if state.withLock({ $0.onlySourceNamed }) { return [StorageEndpoint(ip: "127.0.0.1", port: 1)] }
        return [StorageEndpoint(ip: "127.0.0.1", port: 1), StorageEndpoint(ip: "127.0.0.2", port: 1)]
    }

    func moreReadTargets(_ id: FileID, excluding tried: [StorageEndpoint]) async -> [StorageEndpoint] {
        note("moreReadTargets")
        return [StorageEndpoint(ip: "127.0.0.1", port: 1), StorageEndpoint(ip: "127.0.0.2", port: 1)].filter { !tried.contains($0) }
    }

    func openStream(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, stallTimeout: Duration) -> any ClusterStream {
        note("openStream")
        return PiecewiseClusterStream(backend: self, id: id, endpoint: endpoint, offset: offset, length: length)
    }

    func read(_ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64, sink: @Sendable (ByteBuffer) -> Void) async throws(FSError) {
        note("read")
        if endpoint.ip == "127.0.0.1" {
            if state.withLock({ $0.failFirstReplica || $0.sourceDown }) { throw FSError(.unreachable, "replica down") }
            if state.withLock({ $0.stallFirstReplica }) {
                try? await Task.sleep(for: .seconds(30))
                throw FSError(.timeout, "stalled")
            }
        }
        let copy = endpoint.ip == "127.0.0.2" ? state.withLock({ $0.memberCopies[id.description] }) : nil
        guard var bytes = copy ?? state.withLock({ $0.files[id.description] }) else { throw FSError(.notFound) }
        if state.withLock({ $0.corruptReads }), !bytes.isEmpty { bytes[bytes.count / 2] ^= 0xFF }
        let start = Int(offset), end = length == 0 ? bytes.count : min(bytes.count, Int(offset + length))
        guard start <= end else { throw FSError(.invalid) }
        var index = start
        while index < end {
            let stop = min(end, index + 65536)
            sink(ByteBuffer(bytes: bytes[index..<stop]))
            index = stop
        }
    }

    func upload(filePath: String, options: UploadOptions) async throws(FSError) -> FileID {
        note("upload")
        if let failure = state.withLock({ $0.failUploads }) { throw failure }
        guard let data = FileManager.default.contents(atPath: filePath) else { throw FSError(.io, "cannot read \(filePath)") }
        let id = put([UInt8](data), ext: options.fileExtension, appender: options.appender, storePath: Int(options.storePathIndex ?? 0))
        state.withLock { $0.metadata[id.description] = options.metadata }
        return id
    }

    static func contents(of descriptor: Int32, offset: Int64, length: Int64) throws(FSError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, Int(length), off_t(offset)) }
        guard n == Int(length) else { throw FSError(.io, "short read of the spool") }
        return bytes
    }

    func upload(descriptor: Int32, offset: Int64, length: Int64, options: UploadOptions) async throws(FSError) -> FileID {
        note(options.appender ? "uploadAppenderRange" : "uploadRange")
        if let failure = state.withLock({ $0.failUploads }) { throw failure }
        let id = put(try Self.contents(of: descriptor, offset: offset, length: length), ext: options.fileExtension, appender: options.appender,
                     storePath: Int(options.storePathIndex ?? 0))
        state.withLock { $0.metadata[id.description] = options.metadata }
        return id
    }

    func append(_ id: FileID, descriptor: Int32, offset: Int64, length: Int64) async throws(FSError) {
        note("appendRange")
        let failure = state.withLock { s -> FSError? in
            guard let failure = s.failAppends else { return nil }
            if s.appendsBeforeFailure > 0 {
                s.appendsBeforeFailure -= 1
                return nil
            }
            return failure
        }
        if let failure { throw failure }
        try await append(id, ByteBuffer(bytes: try Self.contents(of: descriptor, offset: offset, length: length)))
    }

    func regenerate(_ id: FileID) async throws(FSError) -> FileID {
        note("regenerate")
        guard id.kind == .appender, let bytes = state.withLock({ $0.files.removeValue(forKey: id.description) }) else {
            throw FSError(.notFound, "no appender file \(id)")
        }
        return put(bytes, ext: id.fileExtension, storePath: id.storePathIndex)
    }

    func delete(_ id: FileID) async throws(FSError) {
        note("delete")
        guard state.withLock({ $0.files.removeValue(forKey: id.description) }) != nil else { throw FSError(.notFound) }
    }

    func getMetadata(_ id: FileID) async throws(FSError) -> FDFSMetadata {
        state.withLock { $0.metadata[id.description] } ?? FDFSMetadata()
    }

    func setMetadata(_ id: FileID, _ metadata: FDFSMetadata, merge: Bool) async throws(FSError) {
        state.withLock { s in s.metadata[id.description] = merge ? (s.metadata[id.description] ?? FDFSMetadata()).merging(metadata) : metadata }
    }

    func append(_ id: FileID, _ bytes: ByteBuffer) async throws(FSError) {
        note("append")
        if member(id) { return state.withLock { $0.memberCopies[id.description]! += Array(bytes.readableBytesView) } }
        state.withLock { s in
            s.files[id.description, default: []] += Array(bytes.readableBytesView)
            s.mtimes[id.description, default: 0] += 1
        }
    }

    func modify(_ id: FileID, offset: Int64, _ bytes: ByteBuffer) async throws(FSError) {
        note("modify")
        await modifyGate.pass()
        let onMember = member(id)
        state.withLock { s in
            var content = (onMember ? s.memberCopies[id.description] : s.files[id.description]) ?? []
            let new = Array(bytes.readableBytesView)
            let end = Int(offset) + new.count
            if content.count < end { content += [UInt8](repeating: 0, count: end - content.count) }
            content.replaceSubrange(Int(offset)..<end, with: new)
            if onMember { s.memberCopies[id.description] = content } else { s.files[id.description] = content }
            s.mtimes[id.description, default: 0] += 1
        }
    }

    func truncate(_ id: FileID, size: Int64) async throws(FSError) {
        note("truncate")
        let onMember = member(id)
        state.withLock { s in
            var content = (onMember ? s.memberCopies[id.description] : s.files[id.description]) ?? []
            if content.count > Int(size) { content.removeLast(content.count - Int(size)) } else { content += [UInt8](repeating: 0, count: Int(size) - content.count) }
            if onMember { s.memberCopies[id.description] = content; return }
            s.files[id.description] = content
            s.mtimes[id.description, default: 0] += 1
        }
    }
}

/// A temporary directory removed at the end of a test (after what was registered with
/// ``beforeRemoval(_:)`` ran: file systems stop and their block cache writer drains, so no
/// late write races the removal).
final class TempDir {
    private let directory = TemporaryDirectory("fdfs-mount-test")
    private var cleanups: [() -> Void] = []

    var path: String { directory.path }

    func beforeRemoval(_ body: @escaping () -> Void) { cleanups.append(body) }

    /// The directory itself goes after this, with `directory`.
    deinit { for cleanup in cleanups { cleanup() } }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// Lets a test hold a cluster call: once ``close()``d, calls wait in ``pass()`` until
/// ``open()``; ``held()`` returns as soon as one waits.
final class Gate: Sendable {
    private struct State {
        var closed = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var watchers: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func close() { state.withLock { $0.closed = true } }

    func pass() async {
        guard state.withLock({ $0.closed }) else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let (go, watchers) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
                guard s.closed else { return (true, []) }
                s.waiting.append(c)
                defer { s.watchers = [] }
                return (false, s.watchers)
            }
            for watcher in watchers { watcher.resume() }
            if go { c.resume() }
        }
    }

    func held() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if !s.waiting.isEmpty { return true }
                s.watchers.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.closed = false
            defer { s.waiting = [] }
            return s.waiting
        }
        for c in waiting { c.resume() }
    }
}
