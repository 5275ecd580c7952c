import CFuse3
import FDFSMount

#if canImport(Glibc)
import Glibc
#endif

/// How the tools (`export`, `meta …`) name a mapping store: `postgres://…` (a shared
/// namespace), `sqlite:STATE_DIR`, a state directory (holding `mapping.db`), or a mount point
/// (its state directory from the root's `user.fdfs.state_dir`, else the default one; a mount on
/// PostgreSQL has no `mapping.db` there, and then `$FDFS_META_URL` names its database).
extension MountCommand {
    /// A store argument resolved: where the namespace is, and the SQLite state directory.
    struct StoreArgument {
        var location: MetadataLocation
        var stateDir: String

        var isSQLite: Bool { location == .sqlite }
        var description: String { isSQLite ? "sqlite:\(stateDir)" : location.description }
    }

    static var environmentMetaURL: String? {
        guard let value = getenv("FDFS_META_URL"), value.pointee != 0 else { return nil }
        return String(cString: value)
    }

    /// `--meta URL` wins, then a positional STATE_DIR|MOUNTPOINT, then `$FDFS_META_URL`.
    static func storeArgument(meta: String?, positional: String?) throws(FSError) -> StoreArgument {
        if let meta { return try storeArgument(meta, mustExist: true) }
        if let positional { return try storeArgument(positional, mustExist: true) }
        if let url = environmentMetaURL { return try storeArgument(url, mustExist: true) }
        throw FSError(.invalid, "name the mapping store: STATE_DIR, MOUNTPOINT, --meta URL or $FDFS_META_URL")
    }

    /// Resolves one store argument. With `mustExist`, a SQLite store must already have its
    /// `mapping.db` (a tool never creates an empty one by mistake).
    static func storeArgument(_ text: String, mustExist: Bool) throws(FSError) -> StoreArgument {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") || text == "sqlite" {
            let location = try MetadataLocation(parsing: text)
            guard location != .sqlite else { throw FSError(.invalid, "sqlite needs its state directory: sqlite:STATE_DIR") }
            return StoreArgument(location: location, stateDir: "")
        }
        var path = text.hasPrefix("sqlite:") ? String(text.dropFirst(7)) : text
        guard !path.isEmpty else { throw FSError(.invalid, "sqlite: needs a state directory") }
        if let resolved = realpath(path, nil) {
            path = String(cString: resolved)
            free(resolved)
        }
        if access(path + "/mapping.db", F_OK) == 0 || text.hasPrefix("sqlite:") {
            if mustExist && access(path + "/mapping.db", F_OK) != 0 { throw FSError(.notFound, "no mapping store in \(path) (mapping.db)") }
            return StoreArgument(location: .sqlite, stateDir: path)
        }
        // A mount point: its state directory.
        let stateDir = mountStateDir(path) ?? defaultStateDir(path)
        if access(stateDir + "/mapping.db", F_OK) == 0 { return StoreArgument(location: .sqlite, stateDir: stateDir) }
        if let url = environmentMetaURL, url != "sqlite" { return try storeArgument(url, mustExist: true) }
        throw FSError(.notFound, "no mapping store in \(stateDir) (a mount on PostgreSQL: give --meta URL or $FDFS_META_URL)")
    }

    /// Opens the store (migrating an older schema, as a mount start does).
    static func openStore(_ argument: StoreArgument) throws(FSError) -> MappingStore {
        if argument.isSQLite { mkdirAll(argument.stateDir) }
        return try MappingStore(location: argument.location, stateDir: argument.stateDir)
    }

    /// The state directory a running fdfs-mount reports for its mount point `path`.
    static func mountStateDir(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = getxattr(path, "user.fdfs.state_dir", &buffer, buffer.count)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The mount points of running fdfs-mount processes whose state directory is `stateDir`
    /// (every FUSE mount in /proc/self/mountinfo is asked for its `user.fdfs.state_dir`).
    static func mountsUsing(stateDir: String) -> [String] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var found: [String] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let fields = String(cString: line).split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1].hasPrefix("fuse"), fields.count > 4 else { continue }
            let mountpoint = ExportRow.unescapedOctal(fields[4])
            if mountStateDir(mountpoint) == stateDir { found.append(mountpoint) }
        }
        return found
    }
}

extension ExportRow {
    /// `\040`-style octal escapes of /proc/self/mountinfo decoded.
    static func unescapedOctal(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "\\"), input.count >= 3, let value = UInt8(String(decoding: input.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                input = input.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
