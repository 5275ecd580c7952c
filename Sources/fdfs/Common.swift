import ArgumentParser
import FDFSClient
import FDFSProtocol
import Foundation
import Synchronization

/// Options every command takes: where the cluster is, and the output format.
struct ClusterOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("config")], help: "FastDFS client.conf to read trackers and timeouts from.")
    var config: String?

    @Option(name: .customLong("tracker"), help: "Tracker HOST:PORT (repeatable); overrides client.conf.")
    var trackers: [String] = []

    @Flag(name: .customLong("json"), help: "Print machine-readable JSON.")
    var json = false

    @Option(name: .customLong("network-timeout"), help: "Seconds to wait for an answer.")
    var networkTimeout: Int?

    /// Builds the client configuration from the flags, client.conf, or $FDFS_CLIENT_CONF.
    func configuration() throws -> ClientConfiguration {
        var configuration: ClientConfiguration
        if !trackers.isEmpty {
            configuration = ClientConfiguration(trackers: try trackers.map { try ServerAddress(parsing: $0, defaultPort: 22122) })
            if let config { configuration.networkTimeout = try ClientConfiguration.load(path: config).networkTimeout }
        } else if let path = config ?? ProcessInfo.processInfo.environment["FDFS_CLIENT_CONF"] {
            configuration = try ClientConfiguration.load(path: path)
        } else if FileManager.default.fileExists(atPath: "/etc/fdfs/client.conf") {
            configuration = try ClientConfiguration.load(path: "/etc/fdfs/client.conf")
        } else {
            throw ValidationError("no tracker: pass --tracker HOST:PORT or -c client.conf (or set FDFS_CLIENT_CONF)")
        }
        if let networkTimeout { configuration.networkTimeout = .seconds(Int64(networkTimeout)) }
        return configuration
    }

    /// Runs `body` with a client and turns every error into one line on stderr.
    func run<T>(_ body: (FDFSClient) async throws -> T) async throws -> T {
        let client = FDFSClient(configuration: try configuration())
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}

/// Parses a file ID argument.
func parseFileID(_ text: String) throws -> FileID {
    do { return try FileID(text) } catch { throw CLIError("invalid file ID: \(error.message)") }
}

/// Prints a JSON value on stdout.
func printJSON(_ value: Any) {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// Writes a line to stderr.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A one-line progress bar on stderr, shown only when stderr is a terminal and the transfer
/// is larger than a few MB.
final class ProgressBar: Sendable {
    private let total: Int64
    private let label: String
    private let enabled: Bool
    private let lastPercent = Mutex(-1)

    init(total: Int64, label: String) {
        self.total = total
        self.label = label
        self.enabled = total > 4 << 20 && isatty(2) == 1
    }

    func update(_ done: Int64) {
        guard enabled, total > 0 else { return }
        let percent = Int(done * 100 / total)
        let changed = lastPercent.withLock { last -> Bool in
            guard percent != last else { return false }
            last = percent
            return true
        }
        guard changed else { return }
        let width = 30
        let filled = width * percent / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)% \(done >> 20)/\(total >> 20) MiB".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// Parses `key=value` arguments into metadata.
func parseMetadata(_ pairs: [String]) throws -> FDFSMetadata {
    var metadata = FDFSMetadata()
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "=") else { throw CLIError("metadata '\(pair)' is not key=value") }
        do {
            try metadata.set(String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
        } catch {
            throw CLIError(error.message)
        }
    }
    return metadata
}

/// A one-line error for the user (printed as `Error: message`, exit code 1).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A storage given on the command line as HOST[:PORT] (port 23000 when left out).
func parseStorage(_ address: String) throws -> StorageEndpoint {
    let parsed = try ServerAddress(parsing: address, defaultPort: 23000)
    return StorageEndpoint(ip: parsed.host, port: parsed.port)
}
