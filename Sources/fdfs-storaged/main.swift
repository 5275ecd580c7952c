import ArgumentParser
import FDFSProtocol
import FDFSStorage
import Foundation
import Logging
import ServiceLifecycle

/// `fdfs-storaged [storage.conf] [start]`: a FastDFS storage server in the foreground, run by
/// a swift-service-lifecycle `ServiceGroup` that stops it cleanly on SIGTERM / SIGINT.

@available(macOS 10.15, *)
struct StorageDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-storaged",
        abstract: "FastDFS-compatible storage server (runs in the foreground; stop with SIGTERM or SIGINT).")

    @Argument(help: "FastDFS storage.conf to read.")
    var configFile: String?

    @Argument(help: "Accepted for compatibility with fdfs_storaged's 'start'; ignored.")
    var action: String?

    @Option(help: "Storage port (overrides 'port').")
    var port: Int?

    @Option(help: "Address to bind and report (overrides 'bind_addr').")
    var bind: String?

    @Option(name: .customLong("base-path"), help: "State directory (overrides 'base_path').")
    var basePath: String?

    @Option(name: .customLong("store-path"), help: "Store path; repeat for several (overrides store_path0..N).")
    var storePaths: [String] = []

    @Option(help: "Group name (overrides 'group_name').")
    var group: String?

    @Option(name: .customLong("tracker"), help: "Tracker HOST:PORT; repeat for several (overrides 'tracker_server').")
    var trackers: [String] = []

    @Option(name: .customLong("http-port"), help: "Port of the HTTP download server, 0 = off (overrides 'http.server_port').")
    var httpPort: Int?

    @Option(name: .customLong("metrics-port"), help: "Port of the Prometheus /metrics endpoint, 0 = off (overrides 'metrics_port').")
    var metricsPort: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        if let action, action != "start" {
            FileHandle.standardError.write(Data("fdfs-storaged: only 'start' is accepted as an action; the server runs in the foreground, stop it with SIGTERM\n".utf8))
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return EscapingLogHandler(handler)
        }
        let logger = Logger(label: "fdfs.storaged")
        var configuration: StorageConfiguration
        do {
            configuration = try configFile.map { try StorageConfiguration.load(path: $0) } ?? StorageConfiguration()
            if let port { configuration.port = port }
            if let bind { configuration.bindAddress = bind.isEmpty ? nil : bind }
            if let basePath { configuration.basePath = basePath }
            if !storePaths.isEmpty { configuration.storePaths = storePaths }
            if configuration.storePaths.isEmpty { configuration.storePaths = [configuration.basePath] }
            if let group { configuration.group = group }
            if !trackers.isEmpty {
                configuration.trackers = try trackers.map { try ServerAddress(parsing: $0, defaultPort: 22122) }
            }
            if let httpPort { configuration.httpPort = httpPort }
            if let metricsPort { configuration.metricsPort = metricsPort }
            try configuration.validate()
        } catch let error as FDFSProtocolError {
            FileHandle.standardError.write(Data("fdfs-storaged: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        for warning in configuration.warnings { logger.warning("\(warning)") }

        let server: StorageServer
        do {
            server = try StorageServer(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("fdfs-storaged: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let group = ServiceGroup(configuration: .init(
            services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        do {
            try await group.run()
        } catch {
            FileHandle.standardError.write(Data("fdfs-storaged: cannot start: \(error)\n".utf8))
            await server.stop()
            throw ExitCode(1)
        }
    }
}

do {
    let command = try StorageDaemon.parse()
    try await command.run()
} catch {
    StorageDaemon.exit(withError: error)
}
