@testable import FDFSMount
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A streamed spool's pages: what was sent goes from memory, never from the file.
@Suite struct SpoolPagesTests {
    /// Pages of `fd`'s first `length` bytes in the page cache, by `mincore`.
    func resident(_ fd: Int32, _ length: Int) -> [Bool] {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let map = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return [] }
        defer { munmap(map, length) }
        var vector = [UInt8](repeating: 0, count: (length + page - 1) / page)
        guard mincore(map, length, &vector) == 0 else { return [] }
        return vector.map { $0 & 1 != 0 }
    }

    /// The type of the file system holding `path`, from /proc/self/mountinfo.
    static func fileSystemType(of path: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        var best: (point: String, type: String)?
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            let fields = halves[0].split(separator: " "), rest = halves.count > 1 ? halves[1].split(separator: " ") : []
            guard fields.count > 4, let type = rest.first else { continue }
            let point = String(fields[4])
            if path.hasPrefix(point == "/" ? "/" : point + "/"), point.count >= (best?.point.count ?? -1) { best = (point, String(type)) }
        }
        return best?.type
    }

    @Test func pagesSentLongEnoughAgoLeaveMemoryAndTheBytesStay() throws {
        let dir = TempDir()
        let path = dir.path + "/spool"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        defer { close(fd) }
        // Sizes in whole 2 MiB: a large folio straddling the end of the range asked to go stays.
        let mib = 1 << 20
        let content = (0..<8 * mib).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }
        _ = content.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        fsync(fd) // clean pages: the drop does not depend on writeback timing
        var pages = SpoolPages(fd: fd, lag: Int64(2 * mib))
        pages.sent(upTo: Int64(8 * mib))
        let map = resident(fd, 8 * mib)
        #expect(map.count == 8 * mib / Int(sysconf(Int32(_SC_PAGESIZE))))
        if Self.fileSystemType(of: path) != "tmpfs" { // tmpfs keeps its pages: they are the file
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            #expect(!map[0..<(6 * mib / page)].contains(true), "the first 6 MiB (sent 2 MiB and more ago) are dropped")
        }
        var back = [UInt8](repeating: 0, count: content.count)
        _ = back.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        #expect(back == content)
    }
}
