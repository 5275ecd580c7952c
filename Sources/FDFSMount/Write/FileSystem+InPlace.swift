import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Appendable mode: an appender file is brought to the spool's content in place, from the
/// ranges written since it was copied.
extension FDFSFileSystem {
    /// of the ranges written below the old end, and APPEND of what lies beyond it.
    func updateInPlace(_ id: FileID, write: WriteState, size: Int64, base appender: WriteLifecycle<UploadStream>.AppenderBase) async throws(FSError) {
        let written = appender.written
        var base = appender.size
        if size < base || appender.truncatedTo < base {
            base = min(size, appender.truncatedTo)
            try await cluster.truncate(id, size: base)
        }
        let step: Int64 = 4 << 20
        func bytes(_ offset: Int64, _ length: Int64) throws(FSError) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(Int(length))
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(length)) { pointer in
                max(0, POSIX.preadAll(write.fd, pointer.baseAddress!, Int(length), offset))
            }
            guard n == Int(length) else { throw FSError(.io, "short spool read") }
            return buffer
        }
        for range in Self.merge(written) {
            let lower = max(0, range.lowerBound), upper = min(range.upperBound, base)
            var offset = lower
            while offset < upper {
                let length = min(step, upper - offset)
                try await cluster.modify(id, offset: offset, try bytes(offset, length))
                offset += length
            }
        }
        var offset = base
        while offset < size {
            let length = min(step, size - offset)
            try await cluster.append(id, try bytes(offset, length))
            offset += length
        }
    }

    static func merge(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        var result: [Range<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound {
                result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}
