#if canImport(Glibc)
import Glibc
#endif

/// Set-user-ID and set-group-ID bits are cleared as ext4 clears them. libfuse 3.14 turns on
/// FUSE_CAP_HANDLE_KILLPRIV by default, which leaves this to the file system, and does not
/// pass on the kernel's kill flags: the core decides from the caller (root stands in for
/// CAP_FSETID). A write or a truncation (`truncate`, `open(O_TRUNC)`) by a user other than
/// root, and a change of owner by anyone, clear them. A write checks one field of its write
/// state under the lock it already takes; the mapping store is only touched when bits go.
extension FDFSFileSystem {
    /// The bits of `mode` those changes clear: S_ISUID, and S_ISGID when group-execute is set
    /// (without it S_ISGID marks mandatory locking, not a privilege, and stays).
    static func privilegeBits(_ mode: UInt32) -> UInt32 {
        var bits = mode & UInt32(S_ISUID)
        if mode & UInt32(S_ISGID | S_IXGRP) == UInt32(S_ISGID | S_IXGRP) { bits |= UInt32(S_ISGID) }
        return bits
    }

    /// May `caller` write or truncate without losing the bits (CAP_FSETID)?
    static func keepsPrivilegeBits(_ caller: Caller) -> Bool { caller.uid == 0 }

    /// After a write or truncation by a caller without CAP_FSETID: clears the privilege bits
    /// of file `ino` (its ctime changes; its cluster metadata is rewritten).
    func clearPrivilegeBits(_ ino: UInt64) throws(FSError) {
        _ = writes.update(ino) { $0.privilegeBits = 0 }
        guard let entry = try store.entry(ino), entry.kind == .file else { return }
        let bits = Self.privilegeBits(entry.mode)
        guard bits != 0 else { return }
        try store.clearModeBits(ino, bits, at: POSIX.nowNanoseconds())
        scheduleMetadata(entry.fileID, ino: ino)
    }

    /// The mode SETATTR leaves: as given, or without the privilege bits of a file whose owner
    /// changes or that `caller` (without CAP_FSETID) truncates.
    static func mode(after changes: AttributeChanges, of entry: Entry, by caller: Caller) -> UInt32 {
        if let mode = changes.mode { return mode & 0o7777 }
        guard entry.kind == .file else { return entry.mode }
        let chown = changes.uid != nil || changes.gid != nil
        let truncation = changes.size != nil && !keepsPrivilegeBits(caller)
        return chown || truncation ? entry.mode & ~privilegeBits(entry.mode) : entry.mode
    }
}

extension MappingStore {
    /// Clears `bits` of the mode of `ino`; its ctime becomes `now`.
    func clearModeBits(_ ino: UInt64, _ bits: UInt32, at now: Int64) throws(FSError) {
        try with { (db: any MetadataConnection) throws(FSError) in
            try db.run("UPDATE entries SET mode = mode & ?, ctime = ? WHERE ino = ?", [.int(Int64(~bits & 0o7777)), .int(now), .int(Int64(ino))])
        }
    }
}
