import FDFSProtocol

/// The check of a whole-file read against the CRC32 carried in a normal file's generated
/// name: the CRC of every block read through one handle is collected, and once all blocks
/// have been seen their combination must equal the name's. Pure value logic (no I/O).
public enum WholeFileCheck: Sendable, Equatable {
    /// Not checked (appender, slave and trunk files: their name's CRC is not the content's).
    case off
    /// Block CRCs seen so far, by block index.
    case collecting([Int: UInt32])
    /// Every block was seen and the file checked (passed or failed; reported once).
    case done

    /// Verdict of a ``record(_:blockCount:)`` that completed the file.
    public enum Verdict: Sendable, Equatable {
        case incomplete
        case passed
        /// The blocks combine to `computed`, not the CRC in the name.
        case failed(computed: UInt32)
    }

    public init(_ ref: FileRef) { self = ref.checkCRC ? .collecting([:]) : .off }

    /// Adds block CRCs; checks the whole file once every block of `ref` has been seen.
    public mutating func record(_ crcs: [Int: UInt32], of ref: FileRef, blockSize: Int) -> Verdict {
        guard case var .collecting(seen) = self else { return .incomplete }
        for (index, crc) in crcs { seen[index] = crc }
        let blockSize = Int64(blockSize)
        let blockCount = Int((ref.size + blockSize - 1) / blockSize)
        guard seen.count == blockCount else {
            self = .collecting(seen)
            return .incomplete
        }
        self = .done
        var crc: UInt32 = 0
        for index in 0..<blockCount {
            guard let block = seen[index] else { return .incomplete }
            let length = min(blockSize, ref.size - Int64(index) * blockSize)
            crc = index == 0 ? block : CRC32.combine(crc, block, secondLength: length)
        }
        return crc == ref.id.generated.crc32 ? .passed : .failed(computed: crc)
    }
}
