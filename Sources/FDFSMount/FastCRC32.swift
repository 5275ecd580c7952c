import FDFSProtocol

/// Running CRC-32 updates on raw memory (block chunk checksums).
public enum FastCRC32 {
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var running = CRC32(continuing: crc)
        running.update(bytes)
        return running.value
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { update(0, bytes) }
}
