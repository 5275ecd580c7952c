import ArgumentParser
import FDFSProtocol
import FDFSTracker
import Foundation
import Logging
import ServiceLifecycle

/// `fdfs-trackerd [tracker.conf] [--port N] [--bind ADDR] [--base-path DIR]`: a FastDFS tracker
/// in the foreground, logging to stderr, stopping cleanly on SIGTERM / SIGINT.
@main
struct TrackerDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-trackerd",
        abstract: "FastDFS-compatible tracker server.",
        discussion: "Reads FastDFS's tracker.conf keys; without a file, FastDFS's defaults apply (port 22122, base_path /opt/fastdfs)."
    )

    @Argument(help: "Path of a FastDFS tracker.conf.")
    var configFile: String?

    @Option(help: "Listen port (overrides 'port'; 0 picks a free one).")
    var port: Int?

    @Option(help: "Listen address (overrides 'bind_addr').")
    var bind: String?

    @Option(help: "State directory root (overrides 'base_path'); state lives in <base-path>/data.")
    var basePath: String?

    @Option(name: .customLong("metrics-port"), help: "Port of the Prometheus /metrics endpoint, 0 = off (overrides 'metrics_port').")
    var metricsPort: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (overrides 'log_level').")
    var logLevel: String?

    func run() async throws {
        let settings: TrackerSettings
        var unknown: [FDFSConfig.Entry] = []
        do {
            if let configFile {
                let config = try FDFSConfig.load(path: configFile)
                settings = try TrackerSettings(config: config)
                unknown = TrackerSettings.unknownEntries(in: config)
            } else {
                settings = TrackerSettings()
            }
        } catch {
            Self.fail(error.description)
        }
        var effective = settings
        if let port {
            guard (0...65535).contains(port) else { Self.fail("--port \(port) is not a port number") }
            effective.port = port
        }
        if let bind { effective.bindAddress = bind }
        if let basePath { effective.basePath = basePath }
        if let metricsPort {
            guard (0...65535).contains(metricsPort) else { Self.fail("--metrics-port \(metricsPort) is not a port number") }
            effective.metricsPort = metricsPort
        }

        let levelText = logLevel ?? effective.logLevel
        guard let level = Self.level(levelText) else { Self.fail("unknown log level '\(levelText)'") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return EscapingLogHandler(handler)
        }
        let logger = Logger(label: "fdfs-trackerd")
        for entry in unknown {
            logger.warning("\(entry.file):\(entry.line): unknown key '\(entry.key)' ignored")
        }
        for warning in effective.warnings { logger.warning("\(warning)") }
        if effective.disabled { Self.fail("\(configFile ?? "config"): disabled = true") }

        let service = TrackerService(settings: effective, store: RegistryStore(basePath: effective.basePath), logger: logger)
        do { try service.loadState() } catch { Self.fail(error.description) }
        let server = TrackerServer(service: service, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        do {
            try await group.run()
        } catch {
            Self.fail("\(error)")
        }
    }

    /// Prints `fdfs-trackerd: error: …` and exits with status 1.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("fdfs-trackerd: error: \(message)\n".utf8))
        Foundation.exit(1)
    }

    /// FastDFS (syslog-style) or swift-log level names.
    static func level(_ text: String) -> Logger.Level? {
        switch text.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "err", "error": .error
        case "crit", "critical", "alert", "emerg": .critical
        default: nil
        }
    }
}
