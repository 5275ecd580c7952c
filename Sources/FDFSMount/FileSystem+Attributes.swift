import FDFSProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The attributes the kernel sees: mode, owner, size and times of a row (a file being written
/// reports its spool), and how long the kernel may cache them.
extension FDFSFileSystem {
    // MARK: Attributes

    /// `links`: the entry's hard links (a directory's subdirectories) when the caller knows
    /// them (a new entry has none), else they are counted (``linkCount(_:)``).
    func attributes(_ entry: Entry, links: Int? = nil) -> FileAttributes {
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
        if entry.kind == .file, let write = writes[entry.ino] {
            write.on { w in
                size = w.size
                mtime = w.mtime
                ctime = max(ctime, w.changed)
            }
        }
        let atime = entry.kind == .file ? max(entry.atime, 0) : entry.atime
        return FileAttributes(
            ino: entry.ino, mode: mode, nlink: links.map { linkCount(entry, links: $0) } ?? linkCount(entry), uid: uid, gid: gid, size: size,
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

    func reply(_ entry: Entry, links: Int? = nil) -> EntryReply {
        EntryReply(attributes: attributes(entry, links: links), timeout: timeout(entry))
    }

    /// SETATTR of mode, owner and times (the mapping store; a file being written keeps them
    /// in its write state too).
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
        if let write = writes[ino] {
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
}
