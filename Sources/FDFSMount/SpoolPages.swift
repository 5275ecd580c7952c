import CFastCRC

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the page cache of a streamed spool file small: once a range has been sent to the
/// cluster, its pages are written back to the spool's disk and then dropped, so that the next
/// writes reuse memory that was just freed instead of taking new pages (on a VM whose balloon
/// reports free pages, each new page costs a host fault; see Docs/fdfs-mount-performance.md).
/// The spool file still holds every byte, on disk: a fallback upload or a read of the file
/// reads them back from there.
///
/// Only a hint to the kernel: pages still being written back when they are asked to go, and a
/// large folio reaching past the end of the range, stay; each range is therefore asked twice
/// (the second time `lag` bytes later), and what is left goes with the spool file. Not
/// thread-safe: one stream's pump calls it, in order.
struct SpoolPages {
    let fd: Int32
    /// How far behind the last byte sent the pages are dropped: writeback started for a range
    /// gets the time the next `lag` bytes take to be sent before its pages are asked to go.
    let lag: Int64
    /// Writeback was started for `0..<writebackStarted`.
    private(set) var writebackStarted: Int64 = 0
    /// Pages below this were asked to go at least twice; not asked again.
    private(set) var dropFloor: Int64 = 0

    init(fd: Int32, lag: Int64) {
        self.fd = fd
        self.lag = max(lag, 1)
    }

    /// The first `end` bytes of the spool have been sent: start their writeback, and drop the
    /// pages of what was sent `lag` bytes earlier (asked twice, in case writeback was still
    /// running the first time).
    mutating func sent(upTo end: Int64) {
        guard end > writebackStarted else { return }
        _ = fdfs_sync_file_range(fd, Int(writebackStarted), Int(end - writebackStarted), 2) // SYNC_FILE_RANGE_WRITE
        writebackStarted = end
        let dropEnd = end - lag
        guard dropEnd > dropFloor else { return }
        _ = posix_fadvise(fd, Int(dropFloor), Int(dropEnd - dropFloor), POSIX_FADV_DONTNEED)
        dropFloor = max(dropFloor, dropEnd - lag)
    }
}
