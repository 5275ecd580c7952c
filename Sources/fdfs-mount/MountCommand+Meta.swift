import FDFSMount

#if canImport(Glibc)
import Glibc
#endif

/// `fdfs-mount meta init|migrate|import`: the namespace's database without mounting it.
extension MountCommand {
    static let metaUsage = """
        usage: fdfs-mount meta init [postgres://USER[:PASS]@HOST[:PORT]/DB | STATE_DIR]   (default: $FDFS_META_URL)
               fdfs-mount meta migrate --from sqlite:STATE_DIR|URL --to URL|sqlite:STATE_DIR
               fdfs-mount meta import [FILE|-] [--meta URL|sqlite:STATE_DIR|STATE_DIR|MOUNTPOINT]
                                      [-c client.conf | --tracker HOST:PORT…] [--replace] [--uid N] [--gid N] [--mode OCTAL]
        (fdfs-mount meta migrate --help, fdfs-mount meta import --help: what they do and refuse)
        """

    static let migrateUsage = """
        usage: fdfs-mount meta migrate --from sqlite:STATE_DIR|URL --to URL|sqlite:STATE_DIR
          Copies a whole namespace into an empty store, typically a one-machine mount's SQLite
          store into the PostgreSQL database that several mounts will share, in one transaction
          on the target. Carried row for row (same inode numbers): every name, directory,
          symlink, special file and hard link with its attributes, names not yet uploaded and
          files unlinked while open (the next mount start cleans those up, as after a crash),
          the journals of cluster deletions, interrupted streamed uploads and cluster metadata
          still to write, the last known group layout, and the settings. Not carried: mount
          sessions. Checked before the commit and again after it: every copied table row for
          row, and `export --all` identical on both sides (printed).
          Refused, changing nothing:
            - while a mount holds either store (a running fdfs-mount on the SQLite state
              directory, or a live mount session in the database): unmount first;
            - when the source has pending uploads (their spool files belong to its mount):
              mount it once more, which resumes them, and unmount it cleanly;
            - when the target is not empty (any name besides the root, any journal row or
              setting): migrate into a new database or schema (…?schema=NAME).
          The source is only read (an older schema is brought to this version first, as a
          mount start would). The SQLite store stays as it was: do not mount it again once
          the mounts use the target, or the two namespaces part ways.
        """

    static func meta(_ args: [String]) -> Int32 {
        switch args.first {
        case "init": return metaInit(Array(args.dropFirst()))
        case "migrate": return migrate(Array(args.dropFirst()))
        case "import": return importFiles(Array(args.dropFirst()))
        case "-h", "--help":
            print(metaUsage)
            return 0
        default: return fail(metaUsage)
        }
    }

    /// `meta init URL|STATE_DIR`: creates the namespace's schema, or migrates an older one,
    /// and prints its version. The URL may come from `$FDFS_META_URL`.
    static func metaInit(_ args: [String]) -> Int32 {
        guard args.count <= 1 else { return fail(metaUsage) }
        guard let target = args.first ?? environmentMetaURL, !target.isEmpty else { return fail(metaUsage) }
        do throws(FSError) {
            let isURL = target.hasPrefix("postgres://") || target.hasPrefix("postgresql://") || target.hasPrefix("sqlite:")
            let store = try openStore(storeArgument(isURL ? target : "sqlite:" + target, mustExist: false))
            print("\(store.path): schema version \(try store.schemaVersion())")
            return 0
        } catch {
            return fail(error.message)
        }
    }

    static func migrate(_ args: [String]) -> Int32 {
        var from: String?, to: String?
        var index = 0
        while index < args.count {
            let arg = args[index]
            switch arg {
            case "-h", "--help":
                print(migrateUsage)
                return 0
            case "--from", "--to":
                index += 1
                guard index < args.count else { return fail("\(arg) needs a store\n\(migrateUsage)") }
                if arg == "--from" { from = args[index] } else { to = args[index] }
            default:
                return fail("unknown argument \(arg)\n\(migrateUsage)")
            }
            index += 1
        }
        guard let from, let to else { return fail(migrateUsage) }
        do throws(FSError) {
            let source = try storeArgument(from, mustExist: true)
            let target = try storeArgument(to, mustExist: false)
            guard source.description != target.description else { throw FSError(.invalid, "--from and --to name the same store") }
            for side in [source, target] where side.isSQLite {
                let mounts = mountsUsing(stateDir: side.stateDir)
                guard mounts.isEmpty else {
                    throw FSError(.busy, "\(side.description) is in use by the mount at \(mounts.joined(separator: ", ")): unmount it first")
                }
            }
            print("migrating \(source.description) -> \(target.description)")
            let started = ContinuousClock.now
            let report = try MetadataTransfer.migrate(from: openStore(source), to: openStore(target), now: Int64(time(nil)))
            let elapsed = ContinuousClock.now - started
            for table in report.tables {
                print("  \(table.name.padding(12)) \(table.rows) rows")
            }
            print("export --all: \(report.exportLines) lines, identical on both sides (checked before and after the commit)")
            let ms = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
            print("migrated in \(ms) ms")
            return 0
        } catch {
            return fail("migrate: \(error.message)")
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
