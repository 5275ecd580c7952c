import FDFSMount

#if canImport(Glibc)
import Glibc
#endif

/// `fdfs-mount export [STATE_DIR|MOUNTPOINT] [--meta URL] [--all] [--json]`: the namespace
/// as sorted, tab-separated lines (``ExportRow``), on either engine.
extension MountCommand {
    static let exportUsage = """
        usage: fdfs-mount export [STATE_DIR|MOUNTPOINT] [--meta URL|sqlite:STATE_DIR] [--all] [--json]
          The store: --meta, else the positional STATE_DIR or MOUNTPOINT, else $FDFS_META_URL.
          One line per name, sorted by the bytes of the path, tab-separated:
            PATH FILE_ID SIZE MODE UID GID MTIME NLINK TARGET
          PATH is relative to the mount root; FILE_ID is - for what is not a file with a cluster
          file; MODE is st_mode in octal with the type bits; MTIME in nanoseconds; NLINK the
          names of a file (hard links), 2 + subdirectories for a directory; TARGET a symlink's
          target or a device number, else -. \\ tab newline CR and control bytes in PATH and
          TARGET are escaped as \\\\ \\t \\n \\r \\xHH. Without --all: files only (what
          `meta import` reads back); --all: every name (directories, symlinks, special files).
        """

    static func export(_ args: [String]) -> Int32 {
        var all = false, json = false
        var meta: String?
        var positional: [String] = []
        var index = 0
        while index < args.count {
            switch args[index] {
            case "--all": all = true
            case "--json": json = true
            case "--meta":
                index += 1
                guard index < args.count else { return fail("--meta needs a URL\n\(exportUsage)") }
                meta = args[index]
            case "-h", "--help":
                print(exportUsage)
                return 0
            default:
                guard !args[index].hasPrefix("-") else { return fail("unknown argument \(args[index])\n\(exportUsage)") }
                positional.append(args[index])
            }
            index += 1
        }
        guard positional.count <= 1 else { return fail(exportUsage) }
        let rows: [ExportRow]
        do throws(FSError) {
            rows = try openStore(storeArgument(meta: meta, positional: positional.first)).export(all: all)
        } catch {
            return fail(error.message)
        }
        var out = ""
        out.reserveCapacity(rows.count * 120)
        if json {
            out += "[\n"
            for (i, row) in rows.enumerated() {
                out += "  {\"path\": \"\(escape(row.path))\", \"file_id\": \(row.fileID.map { "\"\(escape($0))\"" } ?? "null"), "
                out += "\"size\": \(row.size), \"mode\": \"\(String(row.mode, radix: 8))\", \"uid\": \(row.uid), \"gid\": \(row.gid), "
                out += "\"mtime_ns\": \(row.mtime), \"nlink\": \(row.nlink), \"target\": \(row.target.map { "\"\(escape($0))\"" } ?? "null")}"
                out += i + 1 < rows.count ? ",\n" : "\n"
            }
            out += "]\n"
        } else {
            for row in rows {
                out += row.line
                out += "\n"
            }
        }
        writeAll(1, out)
        return 0
    }

    /// Writes all of `text` to `fd`.
    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
