/// `link(2)`: a further name for a file, symlink or special file, in the mapping store only.
/// Every name refers to the one inode (same `st_ino`, mode, owner, times and cluster file
/// ID); `st_nlink` counts the names. Writing through any name rewrites the inode, so after
/// the commit every name reads the new file ID. The cluster file goes with the last name
/// (and after the last descriptor closes).
extension FDFSFileSystem {
    /// LINK: names inode `ino` `newName` in `newParent`. Directories, generated names and
    /// synthetic directories get no further names (EPERM); a name in another group is EXDEV.
    public func link(_ ino: UInt64, newParent: UInt64, newName: String) async throws(FSError) -> EntryReply {
        try checkWritable()
        let inode = try entry(ino)
        if inode.kind == .directory { throw FSError(.notPermitted, "hard links to directories") }
        guard inode.kind.isUser else { throw FSError(.notPermitted, "generated names and cluster directories get no other names") }
        if inode.isDetached { throw FSError(.notFound, "inode \(ino) was unlinked") }
        let dir = try entry(newParent)
        try await checkCreatable(dir, newName)
        guard try store.ancestry(ino).first?.ino == store.ancestry(newParent).first?.ino else {
            throw FSError(.crossDevice, "link between groups")
        }
        return reply(try store.link(ino, into: newParent, as: newName))
    }
}
