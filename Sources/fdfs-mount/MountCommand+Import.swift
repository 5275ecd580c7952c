import FDFSClient
import FDFSMount
import FDFSProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `fdfs-mount meta import`: names for cluster files that exist already.
extension MountCommand {
    static let importUsage = """
        usage: fdfs-mount meta import [FILE|-] [--meta URL|sqlite:STATE_DIR|STATE_DIR|MOUNTPOINT]
                                      [-c client.conf | --tracker HOST:PORT…] [--replace] [--uid N] [--gid N] [--mode OCTAL]
          Reads PATH<TAB>FILE_ID lines (from FILE, or stdin; further columns, as `export` writes
          them, are ignored; empty lines and lines starting with # are skipped) and gives each
          cluster file its name in the namespace (the store: --meta, else $FDFS_META_URL).
          PATH is relative to the mount root and starts with the file's group
          (group1/photos/a.jpg); it is escaped as `export` escapes it. Refused, with the line
          number: a malformed file ID, an absolute path, an empty, . or .. component, a name in
          another group than the file's, a name inside the generated-name tree (groupN/Mxx/…),
          a file the cluster does not have. Missing parent directories are made (mode 0755).
          Each file's size and creation time (its mtime) come from the cluster
          (QUERY_FILE_INFO, with -c client.conf, --tracker, else $FDFS_CLIENT_CONF or
          /etc/fdfs/client.conf). A name that exists is skipped unless --replace, which
          repoints a file (its old cluster file is kept). Files get --mode (default 644) and
          --uid/--gid (default: the caller's). Prints a summary; exits 1 when a line failed.
        """

    struct ImportSummary {
        var imported = 0, replaced = 0, skipped = 0, failed = 0
    }

    static func importFiles(_ args: [String]) -> Int32 {
        var meta: String?, configPath: String?, input: String?
        var trackers: [String] = []
        var replace = false
        var uid = getuid(), gid = getgid(), mode: UInt32 = 0o644
        var index = 0
        while index < args.count {
            let arg = args[index]
            func value() -> String? {
                index += 1
                return index < args.count ? args[index] : nil
            }
            switch arg {
            case "-h", "--help":
                print(importUsage)
                return 0
            case "--replace": replace = true
            case "--meta": guard let v = value() else { return fail("--meta needs a store") }; meta = v
            case "-c", "--config": guard let v = value() else { return fail("\(arg) needs a path") }; configPath = v
            case "--tracker": guard let v = value() else { return fail("--tracker needs HOST:PORT") }; trackers.append(v)
            case "--uid": guard let v = value().flatMap({ UInt32($0) }) else { return fail("--uid needs a number") }; uid = v
            case "--gid": guard let v = value().flatMap({ UInt32($0) }) else { return fail("--gid needs a number") }; gid = v
            case "--mode":
                guard let v = value().flatMap({ UInt32($0, radix: 8) }), v <= 0o7777 else { return fail("--mode needs octal permission bits") }
                mode = v
            default:
                guard input == nil, arg == "-" || !arg.hasPrefix("-") else { return fail("unknown argument \(arg)\n\(importUsage)") }
                input = arg
            }
            index += 1
        }
        let text: String
        if let input, input != "-" {
            guard let file = readFile(input) else { return fail("cannot read \(input)") }
            text = file
        } else {
            text = readFile(nil) ?? ""
        }
        let store: MappingStore
        let configuration: ClientConfiguration
        do throws(FSError) {
            // An explicit sqlite:STATE_DIR may be a new store (names ready before the first mount).
            if let meta {
                store = try openStore(storeArgument(meta, mustExist: !meta.hasPrefix("sqlite:")))
            } else {
                store = try openStore(storeArgument(meta: nil, positional: nil))
            }
        } catch {
            return fail(error.message)
        }
        do {
            if !trackers.isEmpty {
                configuration = ClientConfiguration(trackers: try trackers.map { try ServerAddress(parsing: $0, defaultPort: 22122) })
            } else {
                configuration = try ClientConfiguration.load(path: configPath ?? getenv("FDFS_CLIENT_CONF").map { String(cString: $0) } ?? "/etc/fdfs/client.conf")
            }
        } catch {
            return fail("\(error)")
        }
        let options = (replace: replace, uid: uid, gid: gid, mode: mode)
        let summary = blocking { () async -> ImportSummary in
            let client = FDFSClient(configuration: configuration)
            let summary = await importLines(text, into: store, client: client, options: options)
            await client.shutdown()
            return summary
        }
        print("imported \(summary.imported), replaced \(summary.replaced), skipped \(summary.skipped), failed \(summary.failed)")
        return summary.failed == 0 ? 0 : 1
    }

    static func importLines(_ text: String, into store: MappingStore, client: FDFSClient,
                            options: (replace: Bool, uid: UInt32, gid: UInt32, mode: UInt32)) async -> ImportSummary {
        var summary = ImportSummary()
        var known: [String: FileInfo] = [:]
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            func report(_ why: String) { writeAll(2, "fdfs-mount: line \(number): \(why)\n") }
            let parsed: ImportLine.Parsed
            do throws(FSError) { parsed = try ImportLine.parse(trimmed) } catch {
                report("refused: \(error.message)")
                summary.failed += 1
                continue
            }
            let key = parsed.fileID.description
            var info = known[key]
            if info == nil {
                do {
                    info = try await client.fileInfo(parsed.fileID, computeCRC32: false)
                    known[key] = info
                } catch {
                    report("\(parsed.path): the cluster cannot tell \(key): \(error)")
                    summary.failed += 1
                    continue
                }
            }
            do throws(FSError) {
                let outcome = try store.importFile(parsed, size: info!.size, mtime: info!.createTimestamp * 1_000_000_000,
                                                   uid: options.uid, gid: options.gid, mode: options.mode, replace: options.replace)
                switch outcome {
                case .created: summary.imported += 1
                case .unchanged:
                    summary.skipped += 1
                    report("\(parsed.path): already names \(key), skipped")
                case let .replaced(old):
                    summary.replaced += 1
                    report("\(parsed.path): replaced (its old file \(old) stays in the cluster)")
                }
            } catch {
                if error.code == .exists {
                    summary.skipped += 1
                    report("skipped: \(error.message)")
                } else {
                    summary.failed += 1
                    report("\(parsed.path): \(error.message)")
                }
            }
        }
        return summary
    }

    /// The whole of `path` (nil: stdin) as UTF-8 text.
    static func readFile(_ path: String?) -> String? {
        let fd = path.map { Glibc.open($0, O_RDONLY | O_CLOEXEC) } ?? 0
        guard fd >= 0 else { return nil }
        defer { if path != nil { close(fd) } }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
