import FDFSProtocol

/// A block of file content with a CRC32 per 64 KiB chunk.
public final class Block: Sendable {
    public static let chunkSize = 64 << 10
    public let storage: ByteStorage
    public let chunkCRCs: [UInt32]

    public init(storage: ByteStorage, chunkCRCs: [UInt32]) {
        self.storage = storage
        self.chunkCRCs = chunkCRCs
    }

    public var length: Int { storage.count }

    /// CRC32 of the whole block (combined from the chunk CRCs).
    public var crc32: UInt32 { Self.combine(chunkCRCs, length: length) }

    static func combine(_ crcs: [UInt32], length: Int) -> UInt32 {
        var crc: UInt32 = 0
        var remaining = length
        for (index, chunk) in crcs.enumerated() {
            let size = min(chunkSize, remaining)
            crc = index == 0 ? chunk : CRC32.combine(crc, chunk, secondLength: Int64(size))
            remaining -= size
        }
        return crc
    }

    /// Computes the chunk CRCs of `storage`.
    public static func checksums(_ storage: ByteStorage) -> [UInt32] {
        var crcs: [UInt32] = []
        var offset = 0
        while offset < storage.count {
            let size = min(chunkSize, storage.count - offset)
            crcs.append(CRC32.checksum(UnsafeRawBufferPointer(start: storage.pointer + offset, count: size)))
            offset += size
        }
        return crcs
    }
}
