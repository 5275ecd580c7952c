import FDFSProtocol

/// A cluster file as the reader sees it: its ID, the size to read, and the version its blocks
/// are cached under (appender files carry their version so stale blocks are never used).
public struct FileRef: Sendable, Hashable {
    public var id: FileID
    public var size: Int64
    public var file: FileVersion
    /// Check a whole-file read against the CRC32 in the name (normal files).
    public var checkCRC: Bool

    public init(id: FileID, size: Int64, version: String = "0") {
        self.id = id
        self.size = size
        self.file = FileVersion(id, version: version)
        self.checkCRC = id.kind == .normal
    }

    /// The key of block `index`.
    public func key(_ index: Int) -> BlockKey { BlockKey(file, index) }

    /// The prefix of the cache names of every version of `id` (for ``BlockCache/dropAll(prefix:)``).
    public static func keyPrefix(_ id: FileID) -> String { FileVersion.prefix(id.description) }
}
