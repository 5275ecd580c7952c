/// Sequential-read detection and a growing read-ahead window, per open file.
///
/// Pure value logic (no I/O) so tests can drive it: feed each read, get the block indexes
/// to prefetch.
public struct ReadAhead: Sendable {
    /// Where the reads of a file stand.
    public enum Pattern: Sendable, Equatable {
        /// No read yet.
        case unread
        /// Each read starts within a block of where the reads so far ended (`end`): read-ahead
        /// runs `window` bytes beyond each read and has been issued for every byte below
        /// `issuedUpTo`.
        case sequential(end: Int64, window: Int64, issuedUpTo: Int64)
        /// The last read jumped away (it ended at `end`): no read-ahead until reads follow
        /// each other again.
        case random(end: Int64)
    }

    public let blockSize: Int64
    public let maxWindow: Int64
    public private(set) var pattern = Pattern.unread

    public init(blockSize: Int, maxWindow: Int64) {
        self.blockSize = Int64(blockSize)
        self.maxWindow = max(0, maxWindow)
    }

    /// Whether the reads so far follow each other (a file not read yet counts as sequential).
    public var isSequential: Bool {
        if case .random = pattern { return false }
        return true
    }

    /// Current window in bytes (0 = not sequential).
    public var window: Int64 {
        if case let .sequential(_, window, _) = pattern { return window }
        return 0
    }

    /// Whether a read at `offset` continues the reads so far. The kernel may issue read-ahead
    /// requests slightly out of order, so a block either way still counts.
    func continues(at offset: Int64) -> Bool {
        switch pattern {
        case .unread: return offset == 0
        case let .sequential(end, _, _), let .random(end):
            return offset >= end - blockSize && offset <= end + blockSize
        }
    }

    /// Whether `offset` lies within `slack` bytes of where the reads so far ended.
    func isNear(_ offset: Int64, within slack: Int64) -> Bool {
        switch pattern {
        case .unread: return offset <= slack
        case let .sequential(end, _, _), let .random(end): return abs(offset - end) <= slack
        }
    }

    /// Records a read that needed no read-ahead (a streamed READ, ``FileReader``): the reads
    /// count as sequential, and no window grows or counts as issued. The caller decided the
    /// read belongs to the stream (``continues(at:)``, ``isNear(_:within:)``).
    public mutating func follow(offset: Int64, length: Int64) {
        let end = offset + length
        switch pattern {
        case .unread:
            pattern = .sequential(end: end, window: 0, issuedUpTo: 0)
        case let .sequential(previousEnd, window, issued):
            pattern = .sequential(end: max(end, previousEnd), window: window, issuedUpTo: issued)
        case let .random(previousEnd):
            pattern = .sequential(end: max(end, previousEnd), window: 0, issuedUpTo: 0)
        }
    }

    /// Records a read and returns the blocks to prefetch beyond it.
    public mutating func record(offset: Int64, length: Int64, fileSize: Int64) -> Range<Int> {
        let end = offset + length
        guard continues(at: offset) else {
            pattern = .random(end: end)
            return 0..<0
        }
        var window = min(2 * blockSize, maxWindow), issuedUpTo: Int64 = 0, lastEnd = end
        if case let .sequential(previousEnd, previousWindow, issued) = pattern {
            window = previousWindow == 0 ? window : min(previousWindow * 2, maxWindow)
            issuedUpTo = issued
            lastEnd = max(end, previousEnd)
        } else if case let .random(previousEnd) = pattern {
            lastEnd = max(end, previousEnd)
        }
        defer { pattern = .sequential(end: lastEnd, window: window, issuedUpTo: issuedUpTo) }
        guard window > 0, end < fileSize else { return 0..<0 }
        // Blocks fully beyond the current read, up to end + window.
        let firstBeyond = (end + blockSize - 1) / blockSize
        let startBlock = max(firstBeyond, (issuedUpTo + blockSize - 1) / blockSize)
        let target = min(fileSize, end + window)
        let endBlock = (target + blockSize - 1) / blockSize
        guard startBlock < endBlock else { return 0..<0 }
        issuedUpTo = endBlock * blockSize
        return Int(startBlock)..<Int(endBlock)
    }
}
