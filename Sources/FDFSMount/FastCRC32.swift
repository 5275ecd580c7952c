import CFastCRC

/// CRC-32 (zlib's polynomial and result) with the bulk folded by PCLMULQDQ where the CPU has
/// it (~15 GB/s measured here, against ~3.9 GB/s for the system zlib).
public enum FastCRC32 {
    static let fast: Int32 = fdfs_crc32_fast_available()

    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return fdfs_crc32_update(crc, base.assumingMemoryBound(to: UInt8.self), bytes.count, fast)
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { update(0, bytes) }
}
