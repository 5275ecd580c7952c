import CFuse3
import FDFSClient
import FDFSMount
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A `fuse_req_t` that may travel into a Task (libfuse allows replies from any thread).
/// Unchecked: a C pointer, replied to exactly once, from whichever thread.
struct Request: @unchecked Sendable {
    let raw: fuse_req_t
}

/// Holds the core, which is created after the process has (maybe) daemonized, before the
/// session loop starts serving requests.
/// Unchecked: written once before libfuse's threads start, only read afterwards (a lock would
/// cost every request).
final class CoreHolder: @unchecked Sendable {
    var fs: FDFSFileSystem!
}

/// The libfuse3 low-level adapter: requests in, replies out. Every request that may touch
/// the network is answered from a Task, or (a streamed READ) from a download thread;
/// libfuse threads only do local work (WRITE to the spool, READ hits in the block cache,
/// READDIR from a snapshot).
public final class FuseAdapter: Sendable {
    let holder = CoreHolder()
    let logger: Logger
    public let mountpoint: String
    let xattr: Bool
    let kernelReadaheadKB: Int
    /// The `max_read` the kernel is given (``MountOptions/kernelMaxRead``; 0: libfuse's default).
    /// libfuse 3.14 passes it to the kernel but ends the session at INIT unless `init` sets the
    /// same value in the connection.
    let maxRead: UInt32

    public init(mountpoint: String, xattr: Bool, kernelReadaheadKB: Int = 4096, maxRead: UInt32 = 0, logger: Logger) {
        self.mountpoint = mountpoint
        self.xattr = xattr
        self.kernelReadaheadKB = kernelReadaheadKB
        self.maxRead = maxRead
        self.logger = logger
    }

    var fs: FDFSFileSystem { holder.fs }

    public func attach(_ fs: FDFSFileSystem) {
        holder.fs = fs
    }

    static func from(_ req: fuse_req_t?) -> FuseAdapter {
        Unmanaged<FuseAdapter>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }

    // MARK: Replies

    static func stat(_ a: FileAttributes) -> stat {
        var st = Glibc.stat()
        st.st_ino = UInt(a.ino)
        st.st_mode = a.mode
        st.st_nlink = UInt(a.nlink)
        st.st_rdev = UInt(a.rdev)
        st.st_uid = a.uid
        st.st_gid = a.gid
        st.st_size = Int(a.size)
        st.st_blocks = Int((a.size + 511) / 512)
        st.st_blksize = Int(a.blockSize)
        st.st_atim = timespec(tv_sec: Int(a.atime / 1_000_000_000), tv_nsec: Int(a.atime % 1_000_000_000))
        st.st_mtim = timespec(tv_sec: Int(a.mtime / 1_000_000_000), tv_nsec: Int(a.mtime % 1_000_000_000))
        st.st_ctim = timespec(tv_sec: Int(a.ctime / 1_000_000_000), tv_nsec: Int(a.ctime % 1_000_000_000))
        return st
    }

    static func entryParam(_ reply: EntryReply) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = reply.attributes.ino
        e.generation = 1
        e.attr = stat(reply.attributes)
        e.attr_timeout = reply.timeout
        e.entry_timeout = reply.timeout
        return e
    }

    static func replyEntry(_ req: Request, _ reply: EntryReply) {
        var e = entryParam(reply)
        fuse_reply_entry(req.raw, &e)
    }

    func fail(_ req: Request, _ error: FSError, _ op: String) {
        switch error.code {
        // Answers to what the caller asked for (bad names, missing files, refusals) are not
        // the mount's errors: debug only.
        case .notFound, .exists, .notEmpty, .noData, .rangeTooSmall, .notDirectory, .isDirectory, .readOnly, .notPermitted, .accessDenied,
             .nameTooLong, .invalid, .crossDevice, .fileTooLarge:
            if !error.message.isEmpty { logger.debug("\(op): \(error)") }
        // The metadata engine logs its outage once, when it starts and when it ends.
        case .metadataUnreachable:
            logger.debug("\(op) failed: \(error)")
        default:
            logger.error("\(op) failed: \(error)")
        }
        fuse_reply_err(req.raw, error.errno)
    }

    /// Runs `body` in a Task and replies with its error if it throws.
    func async(_ req: Request, _ op: String, _ body: @escaping @Sendable () async throws(FSError) -> Void) {
        Task {
            do throws(FSError) { try await body() } catch { self.fail(req, error, op) }
        }
    }

    /// Replies to an operation's ``Answer``: on this (libfuse) thread when it is `.done`,
    /// from a Task when it needs the cluster; an error thrown either way is the reply.
    func answer<Reply: Sendable>(_ req: Request, _ op: String, _ ask: () throws(FSError) -> Answer<Reply>,
                                 reply: @escaping @Sendable (Reply) -> Void) {
        do throws(FSError) {
            switch try ask() {
            case .done(let value): reply(value)
            case .needsCluster(let work): async(req, op) { () throws(FSError) in reply(try await work()) }
            }
        } catch { fail(req, error, op) }
    }

    /// Closes a handle the kernel never got (the opener went away before the reply).
    func releaseUnreplied(_ ino: UInt64, _ fh: UInt64) {
        if case .needsCluster(let work) = fs.release(ino, handle: fh) {
            Task { try? await work() }
        }
    }

    static func name(_ pointer: UnsafePointer<CChar>?) -> [UInt8] {
        guard let pointer else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }

    /// A name for something to be created: invalid bytes are EINVAL there (ENOENT in lookups).
    static func newName(_ bytes: [UInt8]) throws(FSError) -> String {
        do throws(FSError) { return try FDFSFileSystem.validName(bytes) } catch {
            throw error.code == .notFound ? FSError(.invalid, "invalid name") : error
        }
    }

    static func caller(_ req: fuse_req_t?) -> Caller {
        guard let ctx = fuse_req_ctx(req) else { return .root }
        return Caller(uid: ctx.pointee.uid, gid: ctx.pointee.gid, pid: ctx.pointee.pid)
    }

    /// Replies to a READ with bytes of a cache file: libfuse splices them from the file into
    /// /dev/fuse when SPLICE_WRITE was negotiated and the reply fits its pipe (1 MiB here, the
    /// reply plus three pages: READs up to 1 MiB - 12 KiB), else reads them into a buffer of its
    /// own (one copy). The span (its descriptor and pin) lives until the reply is sent.
    static func replySpan(_ req: fuse_req_t?, _ span: CachedSpan) {
        withExtendedLifetime(span) { replyData(req, from: span.fd, at: Int64(span.offset), count: span.count) }
    }

    /// Replies to a streamed READ: from a pipe, which libfuse splices on as in ``replySpan``
    /// when the reply fits its pipe (else it copies the bytes once), or from memory.
    static func replyStreamed(_ req: fuse_req_t?, _ body: SplicedBody) {
        switch body {
        case let .pipe(fd, count): replyData(req, from: fd, at: nil, count: count)
        case let .memory(bytes): replyBytes(req, bytes)
        }
    }

    /// Replies to a READ with bytes in memory.
    static func replyBytes(_ req: fuse_req_t?, _ bytes: UnsafeRawBufferPointer) {
        _ = fuse_reply_buf(req, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    /// Replies to a READ with its result.
    static func replyRead(_ req: fuse_req_t?, _ result: ReadResult) {
        result.withUnsafeBytes { replyBytes(req, $0) }
    }

    /// `fuse_reply_data` from a descriptor: at `position` of a file, or from a pipe (nil).
    private static func replyData(_ req: fuse_req_t?, from fd: Int32, at position: Int64?, count: Int) {
        var vector = fuse_bufvec()
        vector.count = 1
        vector.idx = 0
        vector.off = 0
        vector.buf.size = count
        vector.buf.flags = fuse_buf_flags(rawValue: FUSE_BUF_IS_FD.rawValue | (position == nil ? 0 : FUSE_BUF_FD_SEEK.rawValue))
        vector.buf.fd = fd
        vector.buf.pos = off_t(position ?? 0)
        _ = fuse_reply_data(req, &vector, fuse_buf_copy_flags(0))
    }

    // MARK: Operations table

    func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let conn else { return }
            let adapter = Unmanaged<FuseAdapter>.fromOpaque(userdata!).takeUnretainedValue()
            // SPLICE_WRITE: cached blocks can go from the cache file to /dev/fuse by splice(2)
            // (``replySpan``), without passing through the mount's memory.
            let want: [Int32] = [FUSE_CAP_ASYNC_READ, FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_SPLICE_WRITE]
            for bit in want where conn.pointee.capable & UInt32(bit) != 0 { conn.pointee.want |= UInt32(bit) }
            if adapter.maxRead > 0 { conn.pointee.max_read = adapter.maxRead }
            // The page cache of immutable files is kept across opens (keep_cache); never let
            // the kernel drop it on its own mtime heuristics for them.
            // The kernel clamps the bdi read-ahead to what INIT negotiated; raise it once the
            // INIT reply has been processed.
            let mountpoint = adapter.mountpoint, kb = adapter.kernelReadaheadKB, logger = adapter.logger
            Task {
                try? await Task.sleep(for: .milliseconds(100))
                FuseSession.setKernelReadahead(mountpoint, kb: kb, logger: logger)
            }
            let splice = conn.pointee.want & UInt32(FUSE_CAP_SPLICE_WRITE) != 0
            adapter.logger.info("FUSE session initialised (protocol \(conn.pointee.proto_major).\(conn.pointee.proto_minor), max_write \(conn.pointee.max_write), max_read \(conn.pointee.max_read), splice write \(splice ? "on" : "off"))")
        }
        ops.lookup = { req, parent, name in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let bytes = FuseAdapter.name(name)
            adapter.answer(r, "lookup", { () throws(FSError) in
                try adapter.fs.lookup(parent: parent, name: try FDFSFileSystem.validName(bytes))
            }, reply: { FuseAdapter.replyEntry(r, $0) })
        }
        ops.forget = { req, _, _ in fuse_reply_none(req) }
        ops.forget_multi = { req, _, _ in fuse_reply_none(req) }
        ops.getattr = { req, ino, _ in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            do throws(FSError) {
                let reply = try adapter.fs.getattr(ino)
                var st = FuseAdapter.stat(reply.attributes)
                fuse_reply_attr(r.raw, &st, reply.timeout)
            } catch { adapter.fail(r, error, "getattr") }
        }
        ops.setattr = { req, ino, attr, toSet, _ in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let attr else { fuse_reply_err(req, EINVAL); return }
            var changes = AttributeChanges()
            let st = attr.pointee
            if toSet & FUSE_SET_ATTR_MODE != 0 { changes.mode = st.st_mode & 0o7777 }
            if toSet & FUSE_SET_ATTR_UID != 0 { changes.uid = st.st_uid }
            if toSet & FUSE_SET_ATTR_GID != 0 { changes.gid = st.st_gid }
            if toSet & FUSE_SET_ATTR_SIZE != 0 { changes.size = Int64(st.st_size) }
            if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 { changes.atime = .now } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
                changes.atime = .at(Int64(st.st_atim.tv_sec) * 1_000_000_000 + Int64(st.st_atim.tv_nsec))
            }
            if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 { changes.mtime = .now } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
                changes.mtime = .at(Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
            }
            let request = changes
            let caller = FuseAdapter.caller(req)
            adapter.answer(r, "setattr", { () throws(FSError) in try adapter.fs.setattr(ino, changes: request, caller: caller) }, reply: { reply in
                var st = FuseAdapter.stat(reply.attributes)
                fuse_reply_attr(r.raw, &st, reply.timeout)
            })
        }
        ops.readlink = { req, ino in
            let adapter = FuseAdapter.from(req)
            do throws(FSError) {
                let target = try adapter.fs.readlink(ino)
                fuse_reply_readlink(req, target)
            } catch { adapter.fail(Request(raw: req!), error, "readlink") }
        }
        ops.mknod = { req, parent, name, mode, rdev in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let caller = FuseAdapter.caller(req)
            let bytes = FuseAdapter.name(name)
            adapter.async(r, "mknod") { () throws(FSError) in
                let name = try FuseAdapter.newName(bytes)
                FuseAdapter.replyEntry(r, try await adapter.fs.mknod(parent: parent, name: name, mode: mode, rdev: UInt64(rdev), caller: caller))
            }
        }
        ops.mkdir = { req, parent, name, mode in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let caller = FuseAdapter.caller(req)
            let bytes = FuseAdapter.name(name)
            adapter.answer(r, "mkdir", { () throws(FSError) in
                try adapter.fs.mkdir(parent: parent, name: try FuseAdapter.newName(bytes), mode: mode, caller: caller)
            }, reply: { FuseAdapter.replyEntry(r, $0) })
        }
        ops.unlink = { req, parent, name in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let bytes = FuseAdapter.name(name)
            adapter.async(r, "unlink") { () throws(FSError) in
                try await adapter.fs.unlink(parent: parent, name: try FDFSFileSystem.validName(bytes))
                fuse_reply_err(r.raw, 0)
            }
        }
        ops.rmdir = { req, parent, name in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let bytes = FuseAdapter.name(name)
            adapter.async(r, "rmdir") { () throws(FSError) in
                try await adapter.fs.rmdir(parent: parent, name: try FDFSFileSystem.validName(bytes))
                fuse_reply_err(r.raw, 0)
            }
        }
        ops.symlink = { req, link, parent, name in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let caller = FuseAdapter.caller(req)
            let bytes = FuseAdapter.name(name)
            let target = String(decoding: FuseAdapter.name(link), as: UTF8.self)
            adapter.async(r, "symlink") { () throws(FSError) in
                let name = try FuseAdapter.newName(bytes)
                FuseAdapter.replyEntry(r, try await adapter.fs.symlink(parent: parent, name: name, target: target, caller: caller))
            }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let from = FuseAdapter.name(name), to = FuseAdapter.name(newName)
            adapter.async(r, "rename") { () throws(FSError) in
                let source = try FDFSFileSystem.validName(from)
                let target = try FuseAdapter.newName(to)
                try await adapter.fs.rename(parent: parent, name: source, newParent: newParent, newName: target, flags: flags)
                fuse_reply_err(r.raw, 0)
            }
        }
        ops.link = { req, ino, newParent, newName in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let bytes = FuseAdapter.name(newName)
            adapter.async(r, "link") { () throws(FSError) in
                let name = try FuseAdapter.newName(bytes)
                FuseAdapter.replyEntry(r, try await adapter.fs.link(ino, newParent: newParent, newName: name))
            }
        }
        ops.open = { req, ino, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fi else { fuse_reply_err(req, EINVAL); return }
            let info = UncheckedFileInfo(fi.pointee)
            let caller = FuseAdapter.caller(req)
            adapter.async(r, "open") { () throws(FSError) in
                let reply = try await adapter.fs.open(ino, flags: info.value.flags, caller: caller)
                var out = info.value
                out.fh = reply.handle
                out.keep_cache = reply.keepCache ? 1 : 0
                out.direct_io = reply.directIO ? 1 : 0
                if fuse_reply_open(r.raw, &out) != 0 {
                    // The opener went away (interrupted): release what we registered.
                    adapter.releaseUnreplied(ino, reply.handle)
                }
            }
        }
        ops.read = { req, ino, size, offset, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, EBADF); return }
            do throws(FSError) {
                switch try adapter.fs.startRead(fh, offset: Int64(offset), size: size, splice: true) {
                case let .done(result):
                    FuseAdapter.replyRead(req, result)
                case let .spliced(span):
                    FuseAdapter.replySpan(req, span)
                case let .streamed(stream):
                    // Replied to on a download thread; no task unless the stream fails.
                    adapter.fs.deliverRead(stream, reply: { FuseAdapter.replyStreamed(r.raw, $0) }) { result in
                        switch result {
                        case .success(nil): break
                        case let .success(fellBack?): FuseAdapter.replyRead(r.raw, fellBack)
                        case let .failure(error): adapter.fail(r, error, "read")
                        }
                    }
                case let .pending(pending):
                    adapter.async(r, "read") { () throws(FSError) in
                        FuseAdapter.replyRead(r.raw, try await adapter.fs.completeRead(pending))
                    }
                }
            } catch { adapter.fail(r, error, "read") }
        }
        ops.write = { req, ino, buf, size, offset, fi in
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, EBADF); return }
            do throws(FSError) {
                let n = try adapter.fs.write(fh, offset: Int64(offset), bytes: UnsafeRawBufferPointer(start: buf, count: size), caller: FuseAdapter.caller(req))
                fuse_reply_write(req, n)
            } catch { adapter.fail(Request(raw: req!), error, "write") }
        }
        ops.flush = { req, ino, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, EBADF); return }
            adapter.answer(r, "flush", { adapter.fs.flush(ino, handle: fh) }, reply: { _ in fuse_reply_err(r.raw, 0) })
        }
        ops.fsync = { req, ino, _, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, EBADF); return }
            adapter.answer(r, "fsync", { adapter.fs.flush(ino, handle: fh) }, reply: { _ in fuse_reply_err(r.raw, 0) })
        }
        ops.release = { req, ino, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, 0); return }
            // A release cannot fail: the kernel has forgotten the handle whatever happens.
            switch adapter.fs.release(ino, handle: fh) {
            case .done:
                fuse_reply_err(req, 0)
            case .needsCluster(let work):
                Task {
                    try? await work()
                    fuse_reply_err(r.raw, 0)
                }
            }
        }
        ops.opendir = { req, ino, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fi else { fuse_reply_err(req, EINVAL); return }
            let info = UncheckedFileInfo(fi.pointee)
            adapter.answer(r, "opendir", { () throws(FSError) in try adapter.fs.opendir(ino) }, reply: { fh in
                var out = info.value
                out.fh = fh
                if fuse_reply_open(r.raw, &out) != 0 { adapter.fs.releasedir(fh) }
            })
        }
        ops.readdir = { req, _, size, offset, fi in
            let adapter = FuseAdapter.from(req)
            guard let fh = fi?.pointee.fh else { fuse_reply_err(req, EBADF); return }
            do throws(FSError) {
                let entries = try adapter.fs.readdir(fh, offset: Int(offset))
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(size, 1))
                defer { buffer.deallocate() }
                var used = 0
                var index = Int(offset)
                for entry in entries {
                    var st = Glibc.stat()
                    st.st_ino = UInt(entry.ino)
                    st.st_mode = entry.type
                    let needed = fuse_add_direntry(req, buffer + used, size - used, entry.name, &st, off_t(index + 1))
                    if needed > size - used { break }
                    used += needed
                    index += 1
                }
                fuse_reply_buf(req, buffer, used)
            } catch { adapter.fail(Request(raw: req!), error, "readdir") }
        }
        ops.releasedir = { req, _, fi in
            let adapter = FuseAdapter.from(req)
            if let fh = fi?.pointee.fh { adapter.fs.releasedir(fh) }
            fuse_reply_err(req, 0)
        }
        ops.statfs = { req, _ in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            Task {
                let stats = await adapter.fs.statfs()
                var sv = statvfs()
                sv.f_bsize = stats.blockSize
                sv.f_frsize = stats.blockSize
                sv.f_blocks = UInt(stats.blocks)
                sv.f_bfree = UInt(stats.freeBlocks)
                sv.f_bavail = UInt(stats.freeBlocks)
                sv.f_files = UInt(stats.files)
                sv.f_ffree = UInt(stats.freeFiles)
                sv.f_favail = UInt(stats.freeFiles)
                sv.f_namemax = stats.nameMax
                fuse_reply_statfs(r.raw, &sv)
            }
        }
        ops.create = { req, parent, name, mode, fi in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            guard let fi else { fuse_reply_err(req, EINVAL); return }
            let info = UncheckedFileInfo(fi.pointee)
            let caller = FuseAdapter.caller(req)
            let bytes = FuseAdapter.name(name)
            adapter.answer(r, "create", { () throws(FSError) in
                try adapter.fs.create(parent: parent, name: try FuseAdapter.newName(bytes), mode: mode, flags: info.value.flags, caller: caller)
            }, reply: { created in
                let (entry, open) = created
                var e = FuseAdapter.entryParam(entry)
                var out = info.value
                out.fh = open.handle
                out.keep_cache = 0
                out.direct_io = open.directIO ? 1 : 0
                if fuse_reply_create(r.raw, &e, &out) != 0 { adapter.releaseUnreplied(entry.attributes.ino, open.handle) }
            })
        }
        guard xattr else { return ops }
        ops.getxattr = { req, ino, name, size in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let key = String(decoding: FuseAdapter.name(name), as: UTF8.self)
            // The kernel asks for security.capability before every write: answer at once.
            guard key.hasPrefix("user.fdfs.") else { fuse_reply_err(req, ENODATA); return }
            adapter.async(r, "getxattr") { () throws(FSError) in
                let value = try await adapter.fs.getxattr(ino, name: key)
                FuseAdapter.replyXattr(r, value, size)
            }
        }
        ops.listxattr = { req, ino, size in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            adapter.async(r, "listxattr") { () throws(FSError) in
                let names = try await adapter.fs.listxattr(ino)
                var bytes: [UInt8] = []
                for name in names { bytes += Array(name.utf8) + [0] }
                FuseAdapter.replyXattr(r, bytes, size)
            }
        }
        ops.setxattr = { req, ino, name, value, size, _ in
            let r = Request(raw: req!)
            let adapter = FuseAdapter.from(req)
            let key = String(decoding: FuseAdapter.name(name), as: UTF8.self)
            guard key.hasPrefix("user.fdfs.") else { fuse_reply_err(req, EOPNOTSUPP); return }
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            adapter.async(r, "setxattr") { () throws(FSError) in
                try await adapter.fs.setxattr(ino, name: key, value: bytes)
                fuse_reply_err(r.raw, 0)
            }
        }
        ops.removexattr = { req, _, _ in fuse_reply_err(req, EOPNOTSUPP) }
        return ops
    }

    static func replyXattr(_ req: Request, _ value: [UInt8], _ size: Int) {
        if size == 0 {
            fuse_reply_xattr(req.raw, value.count)
        } else if value.count > size {
            fuse_reply_err(req.raw, ERANGE)
        } else {
            value.withUnsafeBytes { fuse_reply_buf(req.raw, $0.baseAddress?.assumingMemoryBound(to: CChar.self), value.count) }
        }
    }
}

/// A copy of a `fuse_file_info` that can be carried into a Task.
/// Unchecked: an imported C struct of integers and bit fields, copied by value.
struct UncheckedFileInfo: @unchecked Sendable {
    var value: fuse_file_info
    init(_ value: fuse_file_info) { self.value = value }
}
