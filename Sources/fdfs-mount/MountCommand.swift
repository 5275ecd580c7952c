import CFuse3
import FDFSClient
import FDFSFuse
import FDFSMount
import FDFSProtocol
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `fdfs-mount MOUNTPOINT [-c client.conf | --tracker HOST:PORT…] [-o OPTIONS] [-f] [-d]`
/// `mount.fdfs SOURCE MOUNTPOINT [-o OPTIONS]` (SOURCE: a client.conf path or HOST:PORT[,HOST:PORT])
/// `fdfs-mount export [STATE_DIR|MOUNTPOINT] [--meta URL] [--all] [--json]` (MountCommand+Export)
/// `fdfs-mount meta init|migrate|import …` (MountCommand+Meta, MountCommand+Import)
///
/// Argument parsing uses the standard library only: nothing may start a thread before the
/// process daemonizes.
enum MountCommand {
    static let usage = MountOptions.usage

    static func fail(_ message: String) -> Int32 {
        let text = "fdfs-mount: \(message)\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        return 1
    }

    static func main(_ argv: [String]) -> Int32 {
        let program = argv.first.map { String($0.split(separator: "/").last ?? "") } ?? "fdfs-mount"
        var rest = Array(argv.dropFirst())
        if rest.first == "export" { return export(Array(rest.dropFirst())) }
        if rest.first == "meta" { return meta(Array(rest.dropFirst())) }
        if rest.contains("-h") || rest.contains("--help") {
            print(usage)
            return 0
        }
        var options = MountOptions()
        // `$FDFS_META_URL` keeps a database password out of `ps`; `-o meta=` overrides it.
        if let url = getenv("FDFS_META_URL"), url.pointee != 0 {
            do throws(FSError) { options.meta = try MetadataLocation(parsing: String(cString: url)) } catch { return fail("FDFS_META_URL: \(error.message)") }
        }
        var mountpoint: String?
        var configPath: String?
        var trackers: [String] = []
        var foreground = false
        let helper = program.hasSuffix("mount.fdfs") || program.hasSuffix("mount.fuse.fdfs")
        if helper {
            guard rest.count >= 2 else { return fail("usage: mount.fdfs SOURCE MOUNTPOINT [-o OPTIONS]") }
            let source = rest.removeFirst()
            if source.contains("/") || access(source, R_OK) == 0 {
                configPath = source
            } else if source != "fdfs" && source != "none" {
                trackers = source.split(separator: ",").map(String.init)
            }
        }
        var positional: [String] = []
        var index = 0
        while index < rest.count {
            let arg = rest[index]
            func value() -> String? {
                index += 1
                return index < rest.count ? rest[index] : nil
            }
            switch arg {
            case "-o":
                guard let text = value() else { return fail("-o needs options") }
                do throws(FSError) { try options.parse(text) } catch { return fail(error.message) }
            case "-c", "--config":
                guard let text = value() else { return fail("\(arg) needs a path") }
                configPath = text
            case "--tracker":
                guard let text = value() else { return fail("--tracker needs HOST:PORT") }
                trackers.append(text)
            case "-f": foreground = true
            case "-d": options.debug = true; foreground = true
            case "-n", "-s", "-v": break // mount(8) flags: no mtab, sloppy, verbose
            default:
                if arg.hasPrefix("-o") {
                    do throws(FSError) { try options.parse(String(arg.dropFirst(2))) } catch { return fail(error.message) }
                } else if arg.hasPrefix("-") {
                    return fail("unknown argument \(arg)\n\(usage)")
                } else {
                    positional.append(arg)
                }
            }
            index += 1
        }
        guard positional.count == 1 else { return fail(usage) }
        mountpoint = positional[0]
        guard let resolved = realpath(mountpoint!, nil) else { return fail("mount point \(mountpoint!) does not exist") }
        let mountPath = String(cString: resolved)
        free(resolved)
        if configPath == nil && trackers.isEmpty {
            if let env = getenv("FDFS_CLIENT_CONF") { configPath = String(cString: env) } else { configPath = "/etc/fdfs/client.conf" }
        }
        var configuration: ClientConfiguration
        do {
            if !trackers.isEmpty {
                configuration = ClientConfiguration(trackers: try trackers.map { try ServerAddress(parsing: $0, defaultPort: 22122) })
            } else {
                configuration = try ClientConfiguration.load(path: configPath!)
            }
        } catch {
            return fail("\(error)")
        }
        configuration.storeTargetLifetime = .nanoseconds(Int64(options.uploadTargetTTL * 1e9))
        let stateDir = options.stateDir ?? defaultStateDir(mountPath)
        let level: Logger.Level = options.debug ? .debug : .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fdfs.mount")
        return serve(mountpoint: mountPath, options: options, configuration: configuration, stateDir: stateDir, foreground: foreground, logger: logger)
    }

    /// `/var/lib/fdfs-mount/<mount point with / as ->` for root, else under ~/.local/state.
    static func defaultStateDir(_ mountpoint: String) -> String {
        let escaped = mountpoint.split(separator: "/").joined(separator: "-")
        let name = escaped.isEmpty ? "root" : escaped
        if getuid() == 0 { return "/var/lib/fdfs-mount/\(name)" }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return "\(home)/.local/state/fdfs-mount/\(name)"
    }

    static func serve(mountpoint: String, options: MountOptions, configuration: ClientConfiguration, stateDir: String, foreground: Bool, logger: Logger) -> Int32 {
        if !foreground {
            mkdirAll(stateDir)
            // The command's process returns here once the background one has reported.
            if let code = Daemon.start(log: stateDir + "/fdfs-mount.log") { return code }
        }
        var config = FuseMountConfig(mountpoint: mountpoint)
        config.readOnly = options.readOnly
        config.allowOther = options.allowOther
        config.autoUnmount = options.autoUnmount
        // Already in the background (Daemon): libfuse must not fork again.
        config.foreground = true
        config.debug = options.debug && foreground && getenv("FDFS_FUSE_DEBUG") != nil
        config.kernelReadaheadKB = options.kernelReadaheadKB
        config.maxRead = options.kernelMaxRead
        if let fsname = options.fsname { config.fsname = fsname }
        if let subtype = options.subtype { config.subtype = subtype }
        let adapter = FuseAdapter(mountpoint: mountpoint, xattr: options.xattr, kernelReadaheadKB: options.kernelReadaheadKB, maxRead: options.kernelMaxRead, logger: logger)
        let holder = Box()
        let rc = FuseSession.run(adapter: adapter, config: config, logger: logger) {
            // Threads may start from here on.
            let client = FDFSClient(configuration: configuration, logger: logger)
            let fs: FDFSFileSystem
            do {
                fs = try FDFSFileSystem(options: options, cluster: FDFSClusterBackend(client: client), stateDir: stateDir, logger: logger)
            } catch {
                logger.critical("cannot open the state directory \(stateDir): \(error)")
                Daemon.failed("cannot open the state directory \(stateDir): \(error)")
                return false
            }
            blocking { await fs.start() }
            if let metrics = options.metrics {
                let parts = metrics.split(separator: ":")
                if parts.count == 2, let port = Int(parts[1]) {
                    let host = String(parts[0])
                    let server: MetricsServer? = blocking { try? await MetricsServer.start(host: host, port: port) { fs.renderMetrics() } }
                    if server == nil { logger.error("cannot listen on \(metrics) for metrics") } else { logger.info("metrics on http://\(metrics)/metrics") }
                    holder.server = server
                } else {
                    logger.error("metrics= needs HOST:PORT")
                }
            }
            adapter.attach(fs)
            holder.fs = fs
            holder.client = client
            Daemon.ready()
            return true
        }
        if rc != 0 { Daemon.failed("could not mount on \(mountpoint) (details in \(stateDir)/fdfs-mount.log)") }
        if let fs = holder.fs {
            fs.stop()
            blocking { await fs.writeMetadata() }
            fs.cache.flush()
        }
        if let server = holder.server { blocking { await server.stop() } }
        if let client = holder.client { blocking { await client.shutdown() } }
        return rc
    }

    final class Box: @unchecked Sendable {
        var fs: FDFSFileSystem?
        var client: FDFSClient?
        var server: MetricsServer?
    }

    static func mkdirAll(_ path: String) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            mkdir(current, 0o700)
        }
    }

    /// Runs async work from the main thread (not a cooperative-pool thread) and waits.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = ResultBox<T>()
        let semaphore = Semaphore()
        Task {
            let value = await body()
            result.value.withLock { $0 = value }
            semaphore.signal()
        }
        semaphore.wait()
        return result.value.withLock { $0! }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

final class ResultBox<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
}

/// A counting semaphore over pthread primitives (no Dispatch before daemonizing).
final class Semaphore: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var count = 0

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    func signal() {
        pthread_mutex_lock(&mutex)
        count += 1
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    func wait() {
        pthread_mutex_lock(&mutex)
        while count == 0 { pthread_cond_wait(&cond, &mutex) }
        count -= 1
        pthread_mutex_unlock(&mutex)
    }
}
