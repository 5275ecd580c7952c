/// Sequential-read detection and a growing read-ahead window, per open file.
///
/// Pure value logic (no I/O) so tests can drive it: feed each read, get the block indexes
/// to prefetch.
public struct ReadAhead: Sendable {
    public let blockSize: Int64
    public let maxWindow: Int64
    /// Current window in bytes (0 = not sequential).
    public private(set) var window: Int64 = 0
    private var lastEnd: Int64 = -1
    /// Prefetch has been issued for every byte below this offset (in the current run).
    private var issuedUpTo: Int64 = 0

    public init(blockSize: Int, maxWindow: Int64) {
        self.blockSize = Int64(blockSize)
        self.maxWindow = max(0, maxWindow)
    }

    /// Records a read and returns the blocks to prefetch beyond it.
    public mutating func record(offset: Int64, length: Int64, fileSize: Int64) -> Range<Int> {
        let end = offset + length
        let sequential: Bool
        if lastEnd < 0 {
            sequential = offset == 0
        } else {
            // The kernel may issue read-ahead requests slightly out of order.
            sequential = offset >= lastEnd - blockSize && offset <= lastEnd + blockSize
        }
        if sequential {
            window = window == 0 ? min(2 * blockSize, maxWindow) : min(window * 2, maxWindow)
        } else {
            window = 0
            issuedUpTo = 0
        }
        lastEnd = max(end, sequential ? lastEnd : end)
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
