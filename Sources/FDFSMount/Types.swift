#if canImport(Glibc)
import Glibc
#endif

/// Attributes of an inode, as `stat` shows them.
public struct FileAttributes: Sendable, Hashable {
    public var ino: UInt64
    /// Full st_mode (type and permission bits).
    public var mode: UInt32
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var atime: Int64
    public var mtime: Int64
    public var ctime: Int64
    public var blockSize: Int32
    /// The device number of a device node (0 otherwise).
    public var rdev: UInt64 = 0

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
}

/// A LOOKUP/CREATE/MKDIR answer: the attributes and how long the kernel may keep them.
public struct EntryReply: Sendable {
    public var attributes: FileAttributes
    public var timeout: Double
}

/// An OPEN/CREATE answer.
public struct OpenReply: Sendable {
    public var handle: UInt64
    /// The content cannot change under this name (immutable cluster file): the kernel may keep
    /// its page cache across opens.
    public var keepCache: Bool
    public var directIO: Bool
}

public struct DirectoryEntry: Sendable, Hashable {
    public var name: String
    public var ino: UInt64
    /// Type bits (S_IFDIR, S_IFREG, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK).
    public var type: UInt32
}

/// A time in SETATTR.
public enum TimeChange: Sendable, Hashable {
    case now
    case at(Int64)
}

/// The fields of a SETATTR request that are set.
public struct AttributeChanges: Sendable, Hashable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: Int64?
    public var atime: TimeChange?
    public var mtime: TimeChange?

    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: Int64? = nil, atime: TimeChange? = nil, mtime: TimeChange? = nil) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atime = atime
        self.mtime = mtime
    }
}

public struct FileSystemStats: Sendable {
    public var blockSize: UInt
    public var blocks: UInt64
    public var freeBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64
    public var nameMax: UInt
}

/// Who asks (from the FUSE request context).
public struct Caller: Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32

    public init(uid: UInt32, gid: UInt32, pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }

    public static let root = Caller(uid: 0, gid: 0, pid: 0)
}

/// The bytes answering a READ: `count` bytes at `offset` in `storage` (which may be a
/// fetched block, replied from without another copy).
public struct ReadResult: Sendable {
    public let storage: ByteStorage
    public let offset: Int
    public let count: Int

    public init(_ storage: ByteStorage, offset: Int = 0, count: Int? = nil) {
        self.storage = storage
        self.offset = offset
        self.count = count ?? storage.count
    }

    /// Runs `body` on the bytes, keeping their storage alive until it returns. There is no
    /// pointer property: a pointer taken from a temporary result (`f().pointer`) outlives the
    /// storage, whose buffer goes back to the pool or the allocator at once (a test that read
    /// `Array(complete(…).bytes)` copied freed memory that a concurrent fetch had reused).
    public func withUnsafeBytes<T, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> T) throws(E) -> T {
        try withExtendedLifetime(storage) { () throws(E) -> T in
            try body(UnsafeRawBufferPointer(start: storage.pointer + offset, count: count))
        }
    }

    /// A copy of the bytes (tests and small answers).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
