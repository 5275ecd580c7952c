#if canImport(Glibc)
import Glibc
#endif

extension EntryKind {
    /// The file type bits of `st_mode` for this kind.
    public var typeBits: UInt32 {
        switch self {
        case .root, .group, .storePath, .subdirHigh, .subdirLow, .directory: UInt32(S_IFDIR)
        case .generated, .file, .hardLink: UInt32(S_IFREG)
        case .symlink: UInt32(S_IFLNK)
        case .fifo: UInt32(S_IFIFO)
        case .socket: UInt32(S_IFSOCK)
        case .characterDevice: UInt32(S_IFCHR)
        case .blockDevice: UInt32(S_IFBLK)
        }
    }

    /// The special-file kind of a `mknod` mode (nil for other types).
    public init?(specialFileMode mode: UInt32) {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFIFO): self = .fifo
        case UInt32(S_IFSOCK): self = .socket
        case UInt32(S_IFCHR): self = .characterDevice
        case UInt32(S_IFBLK): self = .blockDevice
        default: return nil
        }
    }
}

/// `st_nlink`, as ext4 counts it: a directory has 2 + its subdirectories (its name, its `.`,
/// and each child's `..`), anything else one per name (0 once unlinked while open). Each is
/// one count over a partial index of the mapping store, so GETATTR stays cheap.
extension FDFSFileSystem {
    func linkCount(_ entry: Entry) -> UInt32 {
        if entry.kind == .generated { return 1 }
        let counted = entry.kind.isDirectory ? try? store.subdirectoryCount(entry.ino, cached: true) : try? store.linkCount(entry.ino, cached: true)
        return linkCount(entry, links: counted ?? 0)
    }

    /// `st_nlink` of `entry` given its hard links (a directory: its user subdirectories).
    func linkCount(_ entry: Entry, links: Int) -> UInt32 {
        switch entry.kind {
        case .generated: return 1
        case _ where entry.kind.isDirectory: return UInt32(clamping: 2 + links + syntheticSubdirectoryCount(entry))
        default: return UInt32(clamping: (entry.isDetached ? 0 : 1) + links)
        }
    }

    /// The directories the cluster's layout puts in a synthetic directory (from the groups
    /// last listed; 0 before the first listing).
    func syntheticSubdirectoryCount(_ entry: Entry) -> Int {
        let groups = groupCache.known
        let groupName = String((entry.fileID ?? "").split(separator: "/").first ?? "")
        switch entry.kind {
        case .root: return groups.count
        case .group: return min(max(groups[entry.name]?.storePathCount ?? 0, 0), 256)
        case .storePath, .subdirHigh: return min(max(groups[groupName]?.subdirCount ?? 0, 0), 256)
        default: return 0
        }
    }
}
