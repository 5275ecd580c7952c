#if canImport(Glibc)
import Glibc
#endif

/// `mknod(2)`, `mkfifo(3)` and unix-socket `bind(2)`: FIFOs, sockets and device nodes are
/// inodes of the mapping store (type, permission bits and device number) with no cluster
/// file. The kernel does their I/O itself and never asks the mount to open them. Whether a
/// caller may make a device node is the kernel's check (CAP_MKNOD, before the request comes).
extension FDFSFileSystem {
    /// MKNOD: a special file, or (S_IFREG) an empty regular file, uploaded before this returns.
    public func mknod(parent: UInt64, name: String, mode: UInt32, rdev: UInt64, caller: Caller) async throws(FSError) -> EntryReply {
        if mode & UInt32(S_IFMT) == UInt32(S_IFREG) || mode & UInt32(S_IFMT) == 0 {
            let (reply, open) = try await create(parent: parent, name: name, mode: mode & 0o7777, flags: O_WRONLY, caller: caller).value
            let ino = reply.attributes.ino
            do throws(FSError) { try await flush(ino, handle: open.handle).value } catch {
                try? await release(ino, handle: open.handle).value
                throw error
            }
            try? await release(ino, handle: open.handle).value
            return try getattr(ino)
        }
        guard let kind = EntryKind(specialFileMode: mode) else { throw FSError(.invalid, "mknod of file type \(mode & UInt32(S_IFMT))") }
        try await checkCreatable(try entry(parent), name)
        var row = newEntry(parent: parent, name: name, kind: kind, mode: mode, caller: caller)
        if kind == .characterDevice || kind == .blockDevice { row.rdev = rdev }
        return reply(try store.create(row))
    }
}
