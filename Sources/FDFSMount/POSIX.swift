#if canImport(Glibc)
import Glibc
#endif

/// Small POSIX helpers that retry on EINTR and short transfers.
enum POSIX {
    static func pwriteAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, _ offset: Int64) -> Bool {
        var done = 0
        while done < count {
            let n = pwrite(fd, base + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += n
        }
        return true
    }

    /// Reads up to `count` bytes; returns the number read (short only at end of file), or -1.
    static func preadAll(_ fd: Int32, _ base: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, base + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return -1
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func mkdirs(_ path: String, mode: mode_t = 0o700) throws(FSError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw FSError.posix("mkdir \(current)")
            }
        }
    }

    /// Names in a directory (without . and ..).
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func fileSize(_ path: String) -> (size: Int64, mtime: Int64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (Int64(info.st_size), Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// A heap buffer released when the last reference goes (used for block data and replies).
///
/// Buffers of up to ``BufferPool/largest`` bytes come from a pool of power-of-two size classes
/// and go back to it: fresh memory costs page faults on every use (measured: fetches were
/// CPU-bound at ~400 MB/s while each block got a new mmap'd buffer; a 1 GiB cold read with
/// `block_size=4M` took 7.3 s while only 1 MiB buffers were pooled, and 1.0–1.4 s with classes).
public final class ByteStorage: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let capacity: Int
    public var count: Int
    /// The pool's size class of ``pointer``, or nil for a buffer of its own.
    private let pooledSize: Int?

    public static let live = Counter()

    public init(capacity: Int) {
        Self.live.add(1)
        self.capacity = capacity
        if let size = BufferPool.sizeClass(capacity) {
            self.pointer = BufferPool.shared.take(size)
            self.pooledSize = size
        } else {
            // Whole pages, so the block cache can write the buffer with O_DIRECT.
            self.pointer = UnsafeMutableRawPointer.allocate(byteCount: (capacity + 4095) & ~4095, alignment: 4096)
            self.pooledSize = nil
        }
        self.count = 0
    }

    /// Bytes usable at ``pointer``: ``capacity`` rounded up to whole 4 KiB pages.
    public var pageAlignedCapacity: Int { pooledSize ?? (capacity + 4095) & ~4095 }

    deinit {
        Self.live.add(-1)
        if let pooledSize { BufferPool.shared.give(pointer, size: pooledSize) } else { pointer.deallocate() }
    }

    /// A copy of the bytes (tests). A pointer-valued property would outlive a temporary
    /// storage (see ``ReadResult/withUnsafeBytes(_:)``).
    public var bytes: [UInt8] { withExtendedLifetime(self) { Array(UnsafeRawBufferPointer(start: pointer, count: count)) } }
}

/// Reusable buffers in power-of-two size classes from 1 MiB to ``largest`` (block sizes).
///
/// Up to ``idleLimit`` bytes stay idle while reads run, enough for every buffer a cold read at
/// full speed has alive at once (fetches in flight, blocks waiting for the cache writer,
/// replies): a buffer unmapped and mapped again costs page faults, and in a VM whose balloon
/// reports free pages to the host (free page reporting) a host fault per page as well
/// (measured: a cold 1 GiB read mapped ~200 fresh 1 MiB buffers with a 16 MiB limit and ~40
/// with 64 MiB, 2.1–2.2 s against 1.3–1.5 s). Once no buffer has been taken for
/// ``quietPeriod``, ``trim(now:)`` gives back all but ``restingLimit`` bytes.
///
/// `@unchecked Sendable`: it hands out raw `mmap`ed memory, guarded by a `pthread_mutex_t`.
public final class BufferPool: @unchecked Sendable {
    public static let smallest = 1 << 20
    public static let largest = 16 << 20
    /// The pool every ``ByteStorage`` uses.
    public static let shared = BufferPool(idleLimit: 64 << 20, restingLimit: 16 << 20)

    public let idleLimit: Int
    public let restingLimit: Int
    /// Buffers mapped fresh from the kernel since start.
    public let mapped = Counter()
    public static let quietPeriod: Duration = .seconds(5)
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var idle = 0
    private var lastTake = ContinuousClock.now
    private var lock = pthread_mutex_t()

    public init(idleLimit: Int, restingLimit: Int) {
        self.idleLimit = idleLimit
        self.restingLimit = min(restingLimit, idleLimit)
        pthread_mutex_init(&lock, nil)
    }

    deinit {
        for (size, buffers) in free { for buffer in buffers { munmap(buffer, size) } }
        pthread_mutex_destroy(&lock)
    }

    /// The class a buffer of `capacity` bytes comes from, or nil when it is too large to pool.
    public static func sizeClass(_ capacity: Int) -> Int? {
        guard capacity <= largest else { return nil }
        var size = smallest
        while size < capacity { size <<= 1 }
        return size
    }

    /// Bytes of idle buffers held.
    public var idleBytes: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return idle
    }

    /// A buffer of `size` bytes (a size class), reused when one is idle.
    public func take(_ size: Int) -> UnsafeMutableRawPointer {
        pthread_mutex_lock(&lock)
        lastTake = .now
        let buffer = free[size]?.popLast()
        if buffer != nil { idle -= size }
        pthread_mutex_unlock(&lock)
        if let buffer { return buffer }
        mapped.add(1)
        // Straight from mmap, so that pooled buffers never fragment malloc's arenas (a
        // cold 1 GiB read peaked at ~140 MiB RSS with them allocated by malloc).
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != MAP_FAILED else { fatalError("mmap of a \(size)-byte buffer failed: out of memory") }
        return mapped
    }

    /// Returns a buffer from ``take(_:)``; kept for reuse while the pool is under its limit.
    public func give(_ buffer: UnsafeMutableRawPointer, size: Int) {
        pthread_mutex_lock(&lock)
        if idle + size <= idleLimit {
            free[size, default: []].append(buffer)
            idle += size
            pthread_mutex_unlock(&lock)
        } else {
            pthread_mutex_unlock(&lock)
            munmap(buffer, size)
        }
    }

    /// Unmaps idle buffers beyond ``restingLimit`` (largest first) when nothing was taken
    /// during the ``quietPeriod`` before `now`.
    public func trim(now: ContinuousClock.Instant = .now) {
        var released: [(UnsafeMutableRawPointer, Int)] = []
        pthread_mutex_lock(&lock)
        if now - lastTake >= Self.quietPeriod {
            for size in free.keys.sorted(by: >) {
                while idle > restingLimit, let buffer = free[size]?.popLast() {
                    idle -= size
                    released.append((buffer, size))
                }
            }
        }
        pthread_mutex_unlock(&lock)
        for (buffer, size) in released { munmap(buffer, size) }
    }
}
