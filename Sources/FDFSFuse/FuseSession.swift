import CFuse3
import FDFSMount
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Kernel-facing settings of a mount.
public struct FuseMountConfig: Sendable {
    public var mountpoint: String
    public var readOnly = false
    public var allowOther = false
    public var autoUnmount = false
    public var fsname = "fdfs"
    public var subtype = "fdfs"
    public var debug = false
    public var foreground = true
    public var kernelReadaheadKB = 4096
    public var maxThreads: UInt32 = 16
    /// The largest READ the kernel sends (0: libfuse's default).
    public var maxRead: UInt32 = 0

    public init(mountpoint: String) {
        self.mountpoint = mountpoint
    }
}

/// Mounts, serves and unmounts one libfuse3 low-level session.
///
/// SIGTERM, SIGINT and SIGHUP go to libfuse's handlers (`fuse_session_exit`); the loop then
/// returns and the session is unmounted. An external `umount`/`fusermount3 -u` ends the loop
/// too. `kill -9` leaves the kernel mount behind unless `auto_unmount` was given.
public enum FuseSession {
    /// Runs the session. `ready` is called after the mount exists (and after daemonizing),
    /// before the first request is served: create the core there and attach it.
    public static func run(adapter: FuseAdapter, config: FuseMountConfig, logger: Logger, ready: () -> Bool) -> Int32 {
        var options = ["fsname=\(config.fsname)", "subtype=\(config.subtype)", "default_permissions"]
        if config.readOnly { options.append("ro") }
        if config.allowOther { options.append("allow_other") }
        if config.autoUnmount { options.append("auto_unmount") }
        if config.maxRead > 0 { options.append("max_read=\(config.maxRead)") }
        var argv = ["fdfs-mount", "-o", options.joined(separator: ",")]
        if config.debug { argv.append("-d") }
        var args = fuse_args(argc: 0, argv: nil, allocated: 0)
        for arg in argv { fuse_opt_add_arg(&args, arg) }
        defer { fuse_opt_free_args(&args) }

        var ops = adapter.operations()
        let userdata = Unmanaged.passRetained(adapter)
        defer { userdata.release() }
        guard let session = fdfs_fuse_session_new(&args, &ops, userdata.toOpaque()) else {
            logger.critical("fuse_session_new failed (options: \(options.joined(separator: ",")))")
            return 1
        }
        defer { fuse_session_destroy(session) }
        guard fuse_set_signal_handlers(session) == 0 else {
            logger.critical("cannot install signal handlers")
            return 1
        }
        defer { fuse_remove_signal_handlers(session) }
        guard fuse_session_mount(session, config.mountpoint) == 0 else {
            logger.critical("cannot mount on \(config.mountpoint)")
            return 1
        }
        if fuse_daemonize(config.foreground ? 1 : 0) != 0 {
            logger.critical("cannot daemonize")
            fuse_session_unmount(session)
            return 1
        }
        guard ready() else {
            fuse_session_unmount(session)
            return 1
        }
        logger.info("mounted on \(config.mountpoint)")
        // What other mounts on a shared namespace change reaches this kernel at once.
        let pump = InvalidationPump(session: session, logger: logger)
        pump.start(adapter.fs.invalidations)
        let loopConfig = fuse_loop_cfg_create()
        fuse_loop_cfg_set_max_threads(loopConfig, config.maxThreads)
        fuse_loop_cfg_set_clone_fd(loopConfig, 0)
        let rc = fdfs_fuse_session_loop_mt(session, loopConfig)
        fuse_loop_cfg_destroy(loopConfig)
        pump.stop()
        fuse_session_unmount(session)
        logger.info("unmounted \(config.mountpoint) (loop returned \(rc))")
        // A signal makes the loop return the signal number: a clean, requested stop.
        return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1
    }

    /// Raises the mount's bdi read-ahead (the kernel default is 128 KiB, which caps READ
    /// requests at that size). Finds the device in /proc/self/mountinfo, so no request is
    /// sent to the not yet running file system.
    static func setKernelReadahead(_ mountpoint: String, kb: Int, logger: Logger) {
        guard kb > 0, let device = device(of: mountpoint) else { return }
        let path = "/sys/class/bdi/\(device)/read_ahead_kb"
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else {
            logger.info("cannot open \(path) (not root?); kernel read-ahead stays at its default")
            return
        }
        let text = "\(kb)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        logger.debug("kernel read-ahead of \(device) set to \(kb) KiB")
    }

    /// `MAJ:MIN` of the mount at `mountpoint` (the last one listed, if stacked).
    public static func device(of mountpoint: String) -> String? {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return nil }
        defer { fclose(file) }
        var found: String?
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        while getline(&line, &capacity, file) > 0 {
            let fields = String(cString: line!).split(separator: " ")
            guard fields.count > 4 else { continue }
            if unescape(String(fields[4])) == mountpoint { found = String(fields[2]) }
        }
        free(line)
        return found
    }

    static func unescape(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4, let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
