import FDFSProtocol

/// What a replica checks before a file it received by sync becomes visible. A normal file's ID
/// records the file's size and CRC32 (reference §4), so a copy that differs from them is short
/// or wrong, and is never stored under that name: the source sends the file again instead.
/// Appender, slave, trunk and metadata (`-m`) names record nothing about their own content.
struct ReplicaCheck: Sendable {
    let size: Int64
    let crc32: UInt32

    /// The size and CRC32 the name records, or nil when it records nothing to check.
    init?(_ id: FileID) {
        guard id.kind == .normal else { return nil }
        size = id.generated.size
        crc32 = id.generated.crc32
    }

    /// Why a copy of `size` bytes with `crc32` does not match, or nil when it does.
    func mismatch(size actualSize: Int64, crc32 actualCRC: UInt32?) -> String? {
        if actualSize != size { return "\(actualSize) bytes, the name records \(size)" }
        if let actualCRC, actualCRC != crc32 {
            return "CRC32 \(String(actualCRC, radix: 16)), the name records \(String(crc32, radix: 16))"
        }
        return nil
    }
}
