import FDFSProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The CRC32 of appender files that were only ever appended to since they were uploaded here,
/// kept while they grow, so that REGENERATE_APPENDER_FILENAME names the file without reading
/// it back (a 1 GiB file streamed by the mount is 1 GiB read and checksummed at its close
/// otherwise). Each APPEND feeds its bytes to the running checksum as they arrive.
///
/// Only a shortcut: an entry is used only while nothing else touched the file. MODIFY,
/// TRUNCATE, DELETE and every replicated change forget it; two APPENDs that overlap in time
/// forget it (the first to finish cannot know what the other wrote); and the file's size,
/// mtime and inode must still be those recorded after the last append. Without an entry the
/// file is read as before. Entries live in memory only, at most ``capacity`` of them (the
/// oldest go first: an appender file kept for ever in appendable mode must not grow the table).
final class AppenderChecksums: Sendable {
    /// What the file looked like when its checksum was last updated.
    struct Stamp: Equatable, Sendable {
        var size: Int64
        var mtimeSeconds: Int
        var mtimeNanoseconds: Int
        var inode: UInt

        init(_ info: stat) {
            size = Int64(info.st_size)
            mtimeSeconds = info.st_mtim.tv_sec
            mtimeNanoseconds = info.st_mtim.tv_nsec
            inode = UInt(info.st_ino)
        }
    }

    /// A running checksum: `crc` covers the file's first `stamp.size` bytes.
    struct Entry: Equatable, Sendable {
        var crc: UInt32
        var stamp: Stamp
    }

    private let entries: Mutex<BoundedTable<Entry>>

    init(capacity: Int = 4096) {
        entries = Mutex(BoundedTable(capacity: capacity))
    }

    var count: Int { entries.withLock { $0.count } }

    /// An appender file was uploaded here whole: `crc` is its checksum, `info` its state now.
    func uploaded(_ path: String, crc: UInt32, info: stat) {
        entries.withLock { table in
            // A new upload: the newest entry, wherever an old one for the path stood.
            table.remove(path)
            table.set(path, Entry(crc: crc, stamp: Stamp(info)))
        }
    }

    /// An APPEND at `offset` (the file's size) is about to be received: the entry to continue
    /// from, when the checksum is known up to exactly there.
    func beforeAppend(_ path: String, at offset: Int64) -> Entry? {
        entries.withLock { table in
            guard let entry = table[path] else { return nil }
            guard entry.stamp.size == offset else {
                table.remove(path)
                return nil
            }
            return entry
        }
    }

    /// The APPEND that started from `before` ended: `crc` covers the file up to its new end,
    /// whose state is `info`. Kept only if nothing else changed the entry meanwhile.
    func appended(_ path: String, from before: Entry, crc: UInt32, info: stat) {
        entries.withLock { table in
            guard table[path] == before else {
                table.remove(path)
                return
            }
            table.set(path, Entry(crc: crc, stamp: Stamp(info)))
        }
    }

    /// Something other than an in-order append changed (or removed) the file.
    func forget(_ path: String) {
        _ = entries.withLock { $0.remove(path) }
    }

    /// The file is being renamed: its checksum, if it is known for its state `info`; the entry
    /// goes either way.
    func take(_ path: String, matching info: stat) -> UInt32? {
        entries.withLock { table in
            guard let entry = table.remove(path), entry.stamp == Stamp(info) else { return nil }
            return entry.crc
        }
    }
}
