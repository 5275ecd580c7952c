import FDFSProtocol

/// One version of a cluster file, as the block cache keeps it: its file ID and a version
/// (`"0"` for normal files, `"t"` for trunk files, `"SIZE-MTIME"` for appender and slave files,
/// so a changed appender file never meets its old blocks). All blocks of one version live in
/// one cache file, named by ``diskName``.
public struct FileVersion: Sendable, Hashable, CustomStringConvertible {
    /// The file ID's text (`group1/M00/…`).
    public let id: String
    public let version: String
    /// The cache file's name without its suffix: the ID with `/` as `+`, `@`, the version.
    /// File IDs hold neither `+` nor `@` (group names are alphanumeric, names base64url with
    /// `[A-Za-z0-9_.-]` extensions), so the name maps back to exactly one version.
    public let diskName: String

    public init(id: String, version: String) {
        self.id = id
        self.version = version
        self.diskName = Self.prefix(id) + version
    }

    public init(_ id: FileID, version: String) { self.init(id: id.description, version: version) }

    /// The start of ``diskName`` shared by every version of the file ID `id`.
    public static func prefix(_ id: String) -> String {
        String(decoding: id.utf8.map { $0 == UInt8(ascii: "/") ? UInt8(ascii: "+") : $0 }, as: UTF8.self) + "@"
    }

    /// The version a cache file name stands for; nil for a name that is not one of ours.
    public init?(diskName: String) {
        guard let at = diskName.lastIndex(of: "@") else { return nil }
        let id = String(decoding: diskName[..<at].utf8.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "/") : $0 }, as: UTF8.self)
        let version = String(diskName[diskName.index(after: at)...])
        guard !id.isEmpty, !id.contains("@") else { return nil }
        self.init(id: id, version: version)
        guard self.diskName == diskName else { return nil }
    }

    public static func == (a: FileVersion, b: FileVersion) -> Bool { a.diskName == b.diskName }
    public func hash(into hasher: inout Hasher) { hasher.combine(diskName) }
    public var description: String { diskName }
}

/// A block of a cluster file: which version of which file, and its index (block `i` holds the
/// bytes at `i * blockSize`). In the cache it is slot `index` of the file's cache file.
public struct BlockKey: Sendable, Hashable, CustomStringConvertible {
    public var file: FileVersion
    public var index: Int

    public init(_ file: FileVersion, _ index: Int) {
        self.file = file
        self.index = index
    }

    public var description: String { "\(file.diskName)#\(index)" }
}
