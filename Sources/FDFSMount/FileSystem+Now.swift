import FDFSProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Synchronous fast paths: what can be answered from the mapping store and local disk alone
/// is answered on the calling (libfuse) thread, saving the hops to and from a Task. Each
/// returns nil when the request needs the cluster; the caller then uses the async method.
extension FDFSFileSystem {
    /// LOOKUP of a known row, or a miss in a user directory (no cluster involved).
    public func lookupNow(parent: UInt64, name: String) throws(FSError) -> EntryReply? {
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        let dir = try entry(parent)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if let child = try store.child(parent, name) { return reply(child) }
        if dir.kind == .directory { throw FSError(.notFound) }
        return nil
    }

    public func getattrNow(_ ino: UInt64) throws(FSError) -> EntryReply {
        reply(try entry(ino))
    }

    /// Can `name` be created in `dir` without asking the tracker? nil: ask asynchronously.
    func checkCreatableNow(_ dir: Entry, _ name: String) throws(FSError) -> Bool {
        guard dir.kind == .directory else { return false }
        try checkWritable()
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        if try store.child(dir.ino, name) != nil { throw FSError(.exists) }
        return true
    }

    public func createNow(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: Caller) throws(FSError) -> (EntryReply, OpenReply)? {
        let dir = try entry(parent)
        guard try checkCreatableNow(dir, name) else { return nil }
        return try createChecked(parent: parent, name: name, mode: mode, flags: flags, caller: caller)
    }

    func createChecked(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: Caller) throws(FSError) -> (EntryReply, OpenReply) {
        let row = try store.create(newEntry(parent: parent, name: name, kind: .file, mode: mode, caller: caller))
        let write: WriteState
        do { write = try writeStateEmpty(ino: row.ino, dirty: true, mtime: row.mtime) } catch {
            _ = try? store.remove(row.ino, queueDeletion: false)
            throw error
        }
        write.on { $0.privilegeBits = Self.privilegeBits(row.mode) }
        let open = register(Handle(ino: row.ino, writable: true, spool: write), keepCache: false,
                            directIO: writesBypassPageCache(flags))
        return (reply(row), open)
    }

    public func mkdirNow(parent: UInt64, name: String, mode: UInt32, caller: Caller) throws(FSError) -> EntryReply? {
        let dir = try entry(parent)
        guard try checkCreatableNow(dir, name) else { return nil }
        return reply(try store.create(newEntry(parent: parent, name: name, kind: .directory, mode: mode, caller: caller)))
    }

    /// SETATTR without a size change touches the mapping store only.
    public func setattrNow(_ ino: UInt64, changes: AttributeChanges, caller: Caller = .root) throws(FSError) -> EntryReply? {
        guard changes.size == nil else { return nil }
        var entry = try entry(ino)
        guard entry.kind.isUser else {
            if options.readOnly { throw FSError(.readOnly) }
            throw FSError(.notPermitted, "generated names and cluster directories cannot be changed")
        }
        try checkWritable()
        try applyAttributes(&entry, changes, caller: caller)
        return reply(entry)
    }

    /// Mode, owner and times (shared with the async SETATTR).
    func applyAttributes(_ entry: inout Entry, _ changes: AttributeChanges, caller: Caller) throws(FSError) {
        let now = POSIX.nowNanoseconds()
        let ino = entry.ino
        let mode = Self.mode(after: changes, of: entry, by: caller)
        let modeChanged = mode != entry.mode
        entry.mode = mode
        if let uid = changes.uid { entry.uid = uid }
        if let gid = changes.gid { entry.gid = gid }
        switch changes.atime {
        case .now: entry.atime = now
        case let .at(t): entry.atime = t
        case nil: break
        }
        switch changes.mtime {
        case .now: entry.mtime = now
        case let .at(t): entry.mtime = t
        case nil: break
        }
        entry.ctime = now
        if let write = state.withLock({ $0.writes[ino] }) {
            let value = entry.mtime, bits = Self.privilegeBits(mode), setsMtime = changes.mtime != nil
            entry.mtime = write.on { w in
                if setsMtime { w.mtime = value }
                w.privilegeBits = bits
                return w.mtime
            }
        }
        try store.update(entry)
        if entry.kind == .file, modeChanged || changes.mode != nil || changes.mtime != nil { scheduleMetadata(entry.fileID, ino: ino) }
    }

    /// Opening a directory users made needs no cluster listing.
    public func opendirNow(_ ino: UInt64) throws(FSError) -> UInt64? {
        let dir = try entry(ino)
        guard dir.kind == .directory else {
            if !dir.kind.isDirectory { throw FSError(.notDirectory) }
            return nil
        }
        var list: [DirectoryEntry] = [
            DirectoryEntry(name: ".", ino: ino, type: UInt32(S_IFDIR)),
            DirectoryEntry(name: "..", ino: dir.parent, type: UInt32(S_IFDIR)),
        ]
        for child in try store.children(ino) { list.append(listed(child)) }
        return register(listing: list)
    }

    /// FLUSH of a handle with nothing to upload.
    public func flushIsNoop(_ fh: UInt64) -> Bool {
        state.withLock { s in
            guard let handle = s.handles[fh], handle.writable, let write = handle.spool else { return true }
            return write.on { $0.flushIsNoop }
        }
    }

    /// RELEASE that needs no upload and no cluster deletion. false: use the async release.
    public func releaseNow(_ ino: UInt64, handle fh: UInt64) -> Bool {
        let write = state.withLock { s -> (done: Bool, write: WriteState?) in
            guard let handle = s.handles[fh] else { return (true, nil) }
            if let ref = handle.ref, (s.openIDs[ref.id.description] ?? 0) <= 1, s.deferredDeletes.contains(ref.id.description) { return (false, nil) }
            if let write = handle.spool, !write.on({ $0.closeIsQuick }) { return (false, nil) }
            if s.detached.contains(handle.ino), !Self.isOpen(handle.ino, in: s, except: fh) { return (false, nil) }
            s.handles[fh] = nil
            if let ref = handle.ref {
                let key = ref.id.description
                let count = (s.openIDs[key] ?? 1) - 1
                s.openIDs[key] = count > 0 ? count : nil
            }
            handle.spool?.on { $0.closed() }
            return (true, handle.spool)
        }
        guard write.done else { return false }
        if let spool = write.write { releaseIfIdle(spool) }
        return true
    }
}
