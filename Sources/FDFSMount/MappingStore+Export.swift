/// `fdfs-mount export`: the namespace as sorted, tab-separated lines that `diff` can compare
/// between two stores (a migration checks its work with it) and that `meta import` reads back.
///
/// One line per name: `PATH FILE_ID SIZE MODE UID GID MTIME NLINK TARGET`, tab-separated.
/// PATH is relative to the mount root (`group1/photos/a.jpg`); FILE_ID is `-` for anything but
/// a file with a cluster file; MODE is `st_mode` in octal with its type bits (`100644`,
/// `40755`, `120777`); MTIME is in nanoseconds since the epoch; NLINK is the number of names of
/// a non-directory (hard links) and 2 + subdirectories for a directory; TARGET is a symlink's
/// target, a device's number, else `-`. PATH and TARGET escape `\` as `\\`, tab as `\t`,
/// newline as `\n`, carriage return as `\r` and other control bytes as `\xHH`. Lines are sorted
/// by the bytes of PATH.
public struct ExportRow: Sendable, Hashable {
    public var path: String
    public var fileID: String?
    public var size: Int64
    /// `st_mode` with the file type bits.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mtime: Int64
    public var nlink: Int
    /// A symlink's target, or a device's number in decimal.
    public var target: String?

    /// The row as one line of `fdfs-mount export` (without the newline).
    public var line: String {
        [ExportRow.escaped(path), fileID ?? "-", String(size), String(mode, radix: 8), String(uid), String(gid), String(mtime),
         String(nlink), target.map(ExportRow.escaped) ?? "-"].joined(separator: "\t")
    }

    /// `\`, tab, newline, carriage return and other control bytes escaped (see the type).
    public static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// The inverse of ``escaped(_:)``; nil for a malformed escape.
    public static func unescaped(_ text: Substring) -> String? {
        guard text.contains("\\") else { return String(text) }
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            guard byte == UInt8(ascii: "\\") else { bytes.append(byte); continue }
            switch input.popFirst() {
            case UInt8(ascii: "\\"): bytes.append(byte)
            case UInt8(ascii: "t"): bytes.append(9)
            case UInt8(ascii: "n"): bytes.append(10)
            case UInt8(ascii: "r"): bytes.append(13)
            case UInt8(ascii: "x"):
                guard input.count >= 2, let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
                input = input.dropFirst(2)
            default: return nil
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Sorts by the bytes of the path (the same order in every locale and engine).
    public static func sorted(_ rows: [ExportRow]) -> [ExportRow] {
        rows.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    }
}

extension MappingStore {
    /// The namespace for `fdfs-mount export`, sorted by path: with `all`, every name users made
    /// (directories, symlinks, special files, files not yet uploaded); otherwise the files that
    /// point at a cluster file (one row per name, hard links included).
    public func export(all: Bool) throws(FSError) -> [ExportRow] {
        try with { (db: any MetadataConnection) throws(FSError) -> [ExportRow] in try Self.export(db, all: all) }
    }

    /// Reads every row once and builds the paths in memory (one query on either engine).
    static func export(_ db: any MetadataConnection, all: Bool) throws(FSError) -> [ExportRow] {
        var entries: [Entry] = []
        try db.query("SELECT \(columns) FROM entries", []) { (row: SQLRow) throws(FSError) in entries.append(entry(row)) }
        return try export(entries, all: all)
    }

    /// The export of the namespace made of `entries` (every row of the table).
    static func export(_ entries: [Entry], all: Bool) throws(FSError) -> [ExportRow] {
        var byIno: [UInt64: Entry] = [:]
        var links: [UInt64: Int] = [:]
        var subdirectories: [UInt64: Int] = [:]
        for entry in entries {
            byIno[entry.ino] = entry
            if entry.kind == .hardLink { links[entry.linkIno, default: 0] += 1 }
            if entry.kind == .directory, entry.parent != 0 { subdirectories[entry.parent, default: 0] += 1 }
        }
        var paths: [UInt64: String] = [rootIno: ""]
        func path(_ ino: UInt64) throws(FSError) -> String {
            var chain: [Entry] = []
            var current = ino
            while paths[current] == nil {
                guard let entry = byIno[current], entry.parent != 0 else { throw FSError(.io, "inode \(ino) is not under the root") }
                chain.append(entry)
                current = entry.parent
                if chain.count > 4096 { throw FSError(.io, "namespace loop at inode \(ino)") }
            }
            var prefix = paths[current]!
            for entry in chain.reversed() {
                prefix = prefix.isEmpty ? entry.name : prefix + "/" + entry.name
                paths[entry.ino] = prefix
            }
            return prefix
        }
        var rows: [ExportRow] = []
        for name in byIno.values where name.parent != 0 && name.ino != rootIno && (name.kind.isUser || name.kind == .hardLink) {
            guard var inode = name.kind == .hardLink ? byIno[name.linkIno] : name, !inode.isDetached else { continue }
            inode.ino = name.kind == .hardLink ? name.linkIno : name.ino
            if !all && (inode.kind != .file || inode.fileID == nil) { continue }
            var target: String?
            switch inode.kind {
            case .symlink: target = inode.target ?? ""
            case .characterDevice, .blockDevice: target = String(inode.rdev)
            default: break
            }
            let nlink = inode.kind == .directory ? 2 + subdirectories[inode.ino, default: 0] : 1 + links[inode.ino, default: 0]
            let mode = inode.kind == .symlink ? UInt32(0o120777) : inode.kind.typeBits | (inode.mode & 0o7777)
            rows.append(ExportRow(path: try path(name.ino), fileID: inode.kind == .file ? inode.fileID : nil, size: inode.size, mode: mode,
                                  uid: inode.uid, gid: inode.gid, mtime: inode.mtime, nlink: nlink, target: target))
        }
        return ExportRow.sorted(rows)
    }
}
