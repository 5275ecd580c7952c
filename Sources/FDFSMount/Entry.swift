/// What a row of the namespace is.
public enum EntryKind: Int64, Sendable {
    case root = 0
    /// A cluster file under its generated name (`groupN/Mxx/HH/HH/name`).
    case generated = 1
    /// A regular file that a user named.
    case file = 2
    case directory = 3
    case symlink = 4
    case group = 5
    case storePath = 6
    case subdirHigh = 7
    case subdirLow = 8
    /// Special files: inodes of the mapping store with a mode (and a device number) and no
    /// cluster file; the kernel does their I/O.
    case fifo = 9
    case socket = 10
    case characterDevice = 11
    case blockDevice = 12
    /// A further name of an inode (a hard link): the row is a name only, `linkIno` is the
    /// inode it names. Never returned as an inode.
    case hardLink = 13

    /// Directories the mount synthesises from the cluster's layout.
    public var isSynthetic: Bool { self == .root || self == .group || self == .storePath || self == .subdirHigh || self == .subdirLow }
    public var isDirectory: Bool { isSynthetic || self == .directory }
    /// FIFOs, sockets and device nodes.
    public var isSpecial: Bool { (EntryKind.fifo.rawValue...EntryKind.blockDevice.rawValue).contains(rawValue) }
    /// Entries users own (and may rename, remove, change).
    public var isUser: Bool { self == .file || self == .directory || self == .symlink || isSpecial }
}

/// One row of the namespace.
public struct Entry: Sendable, Hashable {
    public var ino: UInt64
    public var parent: UInt64
    public var name: String
    public var kind: EntryKind
    /// Permission bits (no file type bits).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Times in nanoseconds since the epoch.
    public var atime: Int64
    public var mtime: Int64
    public var ctime: Int64
    public var size: Int64
    /// The cluster file of a file or generated entry; for synthetic directories their path
    /// (`group1/M00/0A`).
    public var fileID: String?
    /// Symlink target.
    public var target: String?
    /// 0 = committed, 1 = provisional (created, not yet uploaded).
    public var state: Int64
    /// The device number of a character or block device.
    public var rdev: UInt64 = 0
    /// For a ``EntryKind/hardLink`` row: the inode it names.
    public var linkIno: UInt64 = 0

    public static let committed: Int64 = 0
    public static let provisional: Int64 = 1
}

/// A pending upload: recorded before the upload starts, finished by the commit.
public struct PendingUpload: Sendable, Hashable {
    public var id: Int64
    public var ino: UInt64
    public var spool: String
    public var size: Int64
    public var oldFileID: String?
    public var newFileID: String?
    /// 1 when the upload continues an appender file in place (no new ID).
    public var inPlace: Bool
}
