#if canImport(Glibc)
import Glibc
#endif

/// One of the two files a run drives the same way: the file in the mount, or the shadow in
/// an ordinary directory. Every call reports failure as a ``CallError`` naming the side.
final class FileUnderTest {
    let path: String
    /// "mount" or "shadow", for messages.
    let side: String
    /// The main descriptor (`O_RDWR`), -1 while closed.
    private(set) var fd: Int32 = -1

    init(path: String, side: String) {
        self.path = path
        self.side = side
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    private func fail(_ call: String) -> CallError { CallError(side: side, call: call, code: errno) }

    /// Opens the main descriptor.
    func open(flags: Int32) throws(CallError) {
        let descriptor = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw fail("open(\(Self.describe(flags)))") }
        fd = descriptor
    }

    /// Closes the main descriptor; it is gone even when close() reports an error.
    func close() throws(CallError) {
        let descriptor = fd
        fd = -1
        guard Glibc.close(descriptor) == 0 else { throw fail("close") }
    }

    func pread(offset: Int64, length: Int) throws(CallError) -> [UInt8] {
        try Self.readAll(fd, offset: offset, length: length) { () throws(CallError) in throw fail("pread(\(hex(offset)), \(hex(length)))") }
    }

    func pwrite(_ bytes: [UInt8], offset: Int64) throws(CallError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw fail("pwrite(\(hex(offset)), \(hex(bytes.count)))") }
            done += n
        }
    }

    func truncatePath(to size: Int64) throws(CallError) {
        guard Glibc.truncate(path, off_t(size)) == 0 else { throw fail("truncate(\(hex(size)))") }
    }

    func ftruncate(to size: Int64) throws(CallError) {
        guard Glibc.ftruncate(fd, off_t(size)) == 0 else { throw fail("ftruncate(\(hex(size)))") }
    }

    func fsync() throws(CallError) {
        guard Glibc.fsync(fd) == 0 else { throw fail("fsync") }
    }

    /// Opens a second descriptor `O_WRONLY|O_APPEND`, writes `bytes` with one write(2) (looping
    /// only on a short write) and closes it. Returns close()'s error rather than throwing it, so
    /// the caller decides whether it is tolerated.
    func append(_ bytes: [UInt8]) throws(CallError) -> CallError? {
        let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard descriptor >= 0 else { throw fail("open(O_WRONLY|O_APPEND)") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = fail("write(O_APPEND, \(hex(bytes.count)))")
                Glibc.close(descriptor)
                throw error
            }
            done += n
        }
        return Glibc.close(descriptor) == 0 ? nil : fail("close(O_APPEND descriptor)")
    }

    /// Maps the page-aligned range around `offset..<offset+length` read-only and copies those bytes.
    func mapRead(offset: Int64, length: Int, shared: Bool) throws(CallError) -> [UInt8] {
        let (base, mapped, skip) = try map(offset: offset, length: length, write: false, shared: shared)
        defer { munmap(base, mapped) }
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            if length > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base + skip, byteCount: length) }
            initialized = length
        }
    }

    /// Maps the range shared and writable, copies `bytes` in, optionally msyncs, unmaps.
    func mapWrite(_ bytes: [UInt8], offset: Int64, sync: Bool) throws(CallError) {
        let (base, mapped, skip) = try map(offset: offset, length: bytes.count, write: true, shared: true)
        defer { munmap(base, mapped) }
        bytes.withUnsafeBytes { (base + skip).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        if sync, msync(base, mapped, MS_SYNC) != 0 { throw fail("msync(MS_SYNC)") }
    }

    private func map(offset: Int64, length: Int, write: Bool, shared: Bool) throws(CallError) -> (UnsafeMutableRawPointer, Int, Int) {
        let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset - offset % page
        let skip = Int(offset - start)
        let mapped = skip + length
        let protection = write ? PROT_READ | PROT_WRITE : PROT_READ
        let flags = shared ? MAP_SHARED : MAP_PRIVATE
        let base = mmap(nil, mapped, protection, flags, fd, off_t(start))
        guard let base, base != MAP_FAILED else {
            throw fail("mmap(\(hex(start)), \(hex(mapped)), \(write ? "PROT_READ|PROT_WRITE" : "PROT_READ"), \(shared ? "MAP_SHARED" : "MAP_PRIVATE"))")
        }
        return (base, mapped, skip)
    }

    /// The size as fstat(2) of the main descriptor reports it.
    func descriptorSize() throws(CallError) -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail("fstat") }
        return Int64(info.st_size)
    }

    /// The size as stat(2) of the path reports it.
    func pathSize() throws(CallError) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw fail("stat") }
        return Int64(info.st_size)
    }

    /// Every byte, read through the main descriptor up to end of file.
    func contents() throws(CallError) -> [UInt8] {
        try Self.readToEnd(fd) { () throws(CallError) in throw fail("pread (whole file)") }
    }

    /// Every byte, read through a fresh read-only descriptor (opened and closed here).
    func contentsThroughFreshDescriptor() throws(CallError) -> [UInt8] {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw fail("open(O_RDONLY)") }
        defer { Glibc.close(descriptor) }
        return try Self.readToEnd(descriptor) { () throws(CallError) in throw fail("read (fresh O_RDONLY descriptor)") }
    }

    private static func readToEnd(_ descriptor: Int32, failed: () throws(CallError) -> Never) throws(CallError) -> [UInt8] {
        var result: [UInt8] = []
        let chunk = 1 << 20
        while true {
            let part = try readAll(descriptor, offset: Int64(result.count), length: chunk, failed: failed)
            result += part
            if part.count < chunk { return result }
        }
    }

    /// Up to `length` bytes at `offset` (short only at end of file).
    private static func readAll(_ descriptor: Int32, offset: Int64, length: Int, failed: () throws(CallError) -> Never) throws(CallError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: length)
        var done = 0
        while done < length {
            let n = buffer.withUnsafeMutableBytes { Glibc.pread(descriptor, $0.baseAddress! + done, length - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { try failed() }
            if n == 0 { break }
            done += n
        }
        buffer.removeLast(length - done)
        return buffer
    }

    static func describe(_ flags: Int32) -> String {
        var parts = [flags & O_ACCMODE == O_RDWR ? "O_RDWR" : flags & O_ACCMODE == O_WRONLY ? "O_WRONLY" : "O_RDONLY"]
        if flags & O_CREAT != 0 { parts.append("O_CREAT") }
        if flags & O_TRUNC != 0 { parts.append("O_TRUNC") }
        if flags & O_APPEND != 0 { parts.append("O_APPEND") }
        return parts.joined(separator: "|")
    }
}
