import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Namespace changes: create, mkdir, symlink, unlink, rmdir, rename, and SETATTR.
extension FDFSFileSystem {
    // MARK: Namespace changes

    func checkWritable() throws(FSError) {
        if options.readOnly { throw FSError(.readOnly) }
    }

    /// Can users create `name` in `dir`? The checks that need no cluster; returns whether the
    /// tracker's layout must be asked too (``checkNotSynthetic(_:_:)``): `name` in a group,
    /// store path or first-level subdirectory may be one of the layout's directories.
    func checkCreatableLocally(_ dir: Entry, _ name: String) throws(FSError) -> Bool {
        try checkWritable()
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if dir.kind == .root { throw FSError(.notPermitted, "groups come from the tracker") }
        // A name the cache (LOOKUP's answer, just before) knows to be free is not asked again:
        // the create's INSERT finds it taken anyway (EEXIST).
        if !store.knownAbsent(dir.ino, name), try store.child(dir.ino, name) != nil { throw FSError(.exists) }
        if dir.kind == .subdirLow, let path = dir.fileID, let slash = path.firstIndex(of: "/"),
           (try? FileID(group: String(path[..<slash]), remoteFilename: String(path[path.index(after: slash)...]) + "/" + name)) != nil {
            throw FSError(.notPermitted, "generated names are reserved")
        }
        return dir.kind == .group || dir.kind == .storePath || dir.kind == .subdirHigh
    }

    /// EEXIST when `name` is one of the directories the tracker's layout puts in `dir`.
    func checkNotSynthetic(_ dir: Entry, _ name: String) async throws(FSError) {
        if await syntheticChild(dir, name) != nil { throw FSError(.exists) }
    }

    /// Can users create `name` in `dir`?
    func checkCreatable(_ dir: Entry, _ name: String) async throws(FSError) {
        if try checkCreatableLocally(dir, name) { try await checkNotSynthetic(dir, name) }
    }

    /// Runs `make` once `name` may be created in `parent`: at once when no cluster needs to
    /// be asked.
    func creating<Reply: Sendable>(in parent: UInt64, _ name: String,
                                   _ make: @escaping @Sendable () throws(FSError) -> Reply) throws(FSError) -> Answer<Reply> {
        // The kind and path of a directory never change; a directory removed meanwhile is
        // found by the create itself (ENOENT).
        let dir = try entry(parent, cached: true)
        guard try checkCreatableLocally(dir, name) else { return .done(try make()) }
        return .needsCluster { () async throws(FSError) in
            try await self.checkNotSynthetic(dir, name)
            return try make()
        }
    }

    func newEntry(parent: UInt64, name: String, kind: EntryKind, mode: UInt32, caller: Caller) -> Entry {
        let now = POSIX.nowNanoseconds()
        return Entry(ino: 0, parent: parent, name: name, kind: kind, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid,
                     atime: now, mtime: now, ctime: now, size: 0, fileID: nil, target: nil,
                     state: kind == .file ? Entry.provisional : Entry.committed)
    }

    /// CREATE: a provisional name (visible at once) and an empty spool; the upload happens at
    /// close. Without `O_EXCL`, a name another mount created since this kernel looked is
    /// opened, as on one machine; with it, that is EEXIST.
    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: Caller) throws(FSError) -> Answer<(EntryReply, OpenReply)> {
        do throws(FSError) {
            let answer = try creating(in: parent, name) { () throws(FSError) in
                try self.createChecked(parent: parent, name: name, mode: mode, flags: flags, caller: caller)
            }
            guard case .needsCluster(let work) = answer else { return answer }
            return .needsCluster { () async throws(FSError) in
                do throws(FSError) { return try await work() } catch {
                    return try await self.openExisting(after: error, parent: parent, name: name, flags: flags, caller: caller)
                }
            }
        } catch {
            guard error.code == .exists, flags & O_EXCL == 0 else { throw error }
            return .needsCluster { () async throws(FSError) in
                try await self.openExisting(after: error, parent: parent, name: name, flags: flags, caller: caller)
            }
        }
    }

    /// CREATE without `O_EXCL` that found the name taken (another mount created it since this
    /// kernel looked): opens that file, as on one machine. Anything else is `error` again.
    func openExisting(after error: FSError, parent: UInt64, name: String, flags: Int32, caller: Caller) async throws(FSError) -> (EntryReply, OpenReply) {
        guard error.code == .exists, flags & O_EXCL == 0 else { throw error }
        let existing = try await lookup(parent: parent, name: name).value.attributes.ino
        let open = try await self.open(existing, flags: flags & ~O_CREAT, caller: caller)
        return (try getattr(existing), open)
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
        return (reply(row, links: 0), open)
    }

    public func mkdir(parent: UInt64, name: String, mode: UInt32, caller: Caller) throws(FSError) -> Answer<EntryReply> {
        try creating(in: parent, name) { () throws(FSError) in
            self.reply(try self.store.create(self.newEntry(parent: parent, name: name, kind: .directory, mode: mode, caller: caller)), links: 0)
        }
    }

    public func symlink(parent: UInt64, name: String, target: String, caller: Caller) async throws(FSError) -> EntryReply {
        let dir = try entry(parent)
        try await checkCreatable(dir, name)
        var row = newEntry(parent: parent, name: name, kind: .symlink, mode: 0o777, caller: caller)
        row.target = target
        row.size = Int64(target.utf8.count)
        return reply(try store.create(row))
    }

    /// The user entry `name` in `parent` as its name row (a hard link is a row of its own)
    /// and as the inode it names, with the inode's link count (``MappingStore/nameAndInode(_:_:)``),
    /// or the right error for what stands there instead.
    func userName(_ parent: UInt64, _ name: String) async throws(FSError) -> (name: Entry, inode: Entry, links: Int) {
        // A directory's kind never changes; one removed meanwhile has no names.
        let dir = try entry(parent, cached: true)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if let found = try store.nameAndInode(parent, name) {
            guard let inode = found.inode, inode.kind.isUser else { throw FSError(.notPermitted, "\(name) is not a user entry") }
            return (found.name, inode, found.links)
        }
        if dir.kind.isSynthetic, await syntheticChild(dir, name) != nil { throw FSError(.notPermitted) }
        throw FSError(.notFound)
    }

    public func unlink(parent: UInt64, name: String) async throws(FSError) {
        try checkWritable()
        let (nameRow, row, links) = try await userName(parent, name)
        if row.kind == .directory { throw FSError(.isDirectory) }
        // One of several names: the inode, its content and its descriptors are untouched.
        if nameRow.kind == .hardLink || links > 0, try store.dropName(nameRow) { return }
        if row.kind == .file, isOpen(row.ino) {
            try await detachOpenFile(row.ino, .unlinked)
            return
        }
        let orphan = try store.remove(row.ino, queueDeletion: true)
        orphanWrite(row.ino)
        if let orphan { await deleteFromCluster(orphan) }
    }

    public func rmdir(parent: UInt64, name: String) async throws(FSError) {
        try checkWritable()
        try await retryingConflicts("rmdir \(name)") { () async throws(FSError) in
            let row = try await self.userName(parent, name).inode
            guard row.kind == .directory else { throw FSError(.notDirectory) }
            try self.store.removeDirectory(row.ino, in: parent, named: name)
        }
    }

    /// Runs `body` again (up to 20 times) while another mount's change makes it fail with
    /// ``FSError/Code/conflict``: each round checks the names afresh.
    func retryingConflicts<T: Sendable>(_ what: String, _ body: () async throws(FSError) -> T) async throws(FSError) -> T {
        var round = 0
        while true {
            do throws(FSError) {
                return try await body()
            } catch {
                round += 1
                guard error.code == .conflict, round < 20 else { throw error }
                logger.debug("\(what): \(error); checking again")
            }
        }
    }

    static let renameNoReplace: UInt32 = 1
    static let renameExchange: UInt32 = 2

    /// RENAME: metadata only (the file ID does not change), atomic in one transaction. A
    /// replaced file is deleted from the cluster after the commit unless keep_replaced.
    public func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32) async throws(FSError) {
        try checkWritable()
        guard newName.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        if flags & Self.renameExchange != 0 { throw FSError(.invalid, "RENAME_EXCHANGE is not supported") }
        try await retryingConflicts("rename \(name)") { () async throws(FSError) in
            try await self.renameChecked(parent: parent, name: name, newParent: newParent, newName: newName, flags: flags)
        }
    }

    /// One attempt at RENAME: the checks, then the store's transaction, which fails with
    /// ``FSError/Code/conflict`` when another mount changed the target name since the checks.
    func renameChecked(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32) async throws(FSError) {
        let (sourceName, source, _) = try await userName(parent, name)
        // As in userName: the kind is all that is asked, and the store's transaction finds a
        // directory removed meanwhile.
        let target = try entry(newParent, cached: true)
        guard target.kind.isDirectory else { throw FSError(.notDirectory) }
        if target.kind == .root { throw FSError(.notPermitted) }
        // Within one directory neither can happen (and the two walks up are saved).
        if newParent != parent {
            let sourceChain = try store.ancestry(parent), targetChain = try store.ancestry(newParent)
            guard sourceChain.first?.ino == targetChain.first?.ino else { throw FSError(.crossDevice, "rename between groups") }
            if source.kind == .directory, newParent == source.ino || targetChain.contains(where: { $0.ino == source.ino }) {
                throw FSError(.invalid, "cannot move a directory into itself")
            }
        }
        let found = try store.nameAndInode(newParent, newName)
        let existingName = found?.name, existing = found?.inode
        if existing == nil, target.kind.isSynthetic, await syntheticChild(target, newName) != nil { throw FSError(.notPermitted) }
        if existing == nil, target.kind == .subdirLow, let path = target.fileID, let slash = path.firstIndex(of: "/"),
           (try? FileID(group: String(path[..<slash]), remoteFilename: String(path[path.index(after: slash)...]) + "/" + newName)) != nil {
            throw FSError(.notPermitted, "generated names are reserved")
        }
        if let existing {
            if existing.ino == source.ino { return }
            if flags & Self.renameNoReplace != 0 { throw FSError(.exists) }
            guard existing.kind.isUser else { throw FSError(.notPermitted) }
            if existing.kind == .directory {
                guard source.kind == .directory else { throw FSError(.isDirectory) }
                if try store.hasChildren(existing.ino) { throw FSError(.notEmpty) }
            } else if source.kind == .directory {
                throw FSError(.notDirectory)
            }
        }
        // A replaced name that is not its inode's last takes nothing else with it.
        var lastName = false
        if let existingName, existingName.kind != .hardLink { lastName = found?.links == 0 }
        let keepOpen = lastName && existing.map { $0.kind == .file && isOpen($0.ino) } ?? false
        let orphan = try store.rename(sourceName.ino, to: newParent, newName, replacing: existingName?.ino, queueDeletion: !options.keepReplaced,
                                      detachReplaced: keepOpen, from: (parent, name))
        if lastName, let existing { orphanWrite(existing.ino) }
        if keepOpen, let existing { await removeWhenClosed(existing.ino) }
        if let orphan { await deleteFromCluster(orphan) }
    }

    /// SETATTR: mode, owner and times change the mapping only (`.done`); a size change goes
    /// through the spool (and is uploaded at once when no descriptor is open). `caller` asks.
    public func setattr(_ ino: UInt64, changes: AttributeChanges, caller: Caller = .root) throws(FSError) -> Answer<EntryReply> {
        var entry = try entry(ino)
        guard entry.kind.isUser else {
            if options.readOnly { throw FSError(.readOnly) }
            throw FSError(.notPermitted, "generated names and cluster directories cannot be changed")
        }
        try checkWritable()
        guard let size = changes.size else {
            try applyAttributes(&entry, changes, caller: caller)
            return .done(reply(entry))
        }
        guard entry.kind == .file else { throw FSError(entry.kind == .directory ? .isDirectory : .invalid) }
        guard size >= 0 else { throw FSError(.invalid) }
        // A size the spool can never hold is EFBIG; one that does not fit now is ENOSPC.
        guard size <= options.spoolSize else { throw FSError(.fileTooLarge, "\(size) bytes is more than spool_size") }
        let found = entry
        return .needsCluster { () async throws(FSError) in
            try await self.resize(found, to: size)
            var entry = try self.entry(ino)
            try self.applyAttributes(&entry, changes, caller: caller)
            return self.reply(entry)
        }
    }

    /// A size change of `entry` through its spool; committed at once when no descriptor is open.
    private func resize(_ entry: Entry, to size: Int64) async throws(FSError) {
        let write = try await writeState(for: entry, truncate: size == 0)
        do throws(FSError) {
            try resize(write, to: size)
        } catch {
            closeUnregistered(write)
            throw error
        }
        let idle = write.on { w in
            w.closed()
            return w.handles == 0
        }
        if idle {
            defer { releaseIfIdle(write) }
            try await commit(write)
        }
    }
}
