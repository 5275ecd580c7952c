import ArgumentParser
import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore

/// Upload and download throughput and latency against any FastDFS cluster, through FDFSClient.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-bench",
        abstract: "Measure uploads and downloads of several sizes and concurrencies against a FastDFS cluster.")

    @Option(name: .customLong("tracker"), help: "Tracker HOST:PORT (repeatable).") var trackers: [String] = []
    @Option(name: [.customShort("c"), .customLong("config")], help: "client.conf") var config: String?
    @Option(help: "Label printed in the first column (e.g. 'ours' or 'C 6.16').") var label = "cluster"
    @Option(help: "Comma-separated sizes: 4K, 1M, 64M.") var sizes = "4K,1M,64M"
    @Option(help: "Comma-separated concurrency levels.") var concurrency = "1,8"
    @Option(help: "Bytes to move per size and direction (bounds the run).") var budget = "256M"
    @Option(help: "Most operations per size and direction.") var maxOps = 2000
    @Option(help: "Group to upload to.") var group: String?
    @Flag(help: "Print a header line.") var header = false

    func run() async throws {
        let configuration: ClientConfiguration
        if !trackers.isEmpty {
            configuration = ClientConfiguration(trackers: try trackers.map { try ServerAddress(parsing: $0, defaultPort: 22122) })
        } else if let config {
            configuration = try ClientConfiguration.load(path: config)
        } else {
            throw ValidationError("pass --tracker HOST:PORT or -c client.conf")
        }
        let client = FDFSClient(configuration: configuration)
        let budgetBytes = FDFSConfig.parseSize(budget) ?? (256 << 20)
        if header {
            print(pad(["cluster", "op", "size", "conc", "ops", "ops/s", "MB/s", "p50 ms", "p99 ms"]))
        }
        for sizeText in sizes.split(separator: ",") {
            guard let size = FDFSConfig.parseSize(String(sizeText)) else { throw ValidationError("bad size \(sizeText)") }
            let payload = ByteBuffer(bytes: (0..<Int(size)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) })
            for level in concurrency.split(separator: ",").compactMap({ Int($0) }) {
                let ops = max(level, min(maxOps, Int(budgetBytes / size)))
                let uploads = try await measure(ops: ops, concurrency: level) { _ in
                    try await client.upload(payload, options: UploadOptions(group: group, fileExtension: "bin"))
                }
                report("upload", size: size, level: level, result: uploads)
                let ids = uploads.values
                let downloads = try await measure(ops: ids.count, concurrency: level) { index in
                    let bytes = try await client.download(ids[index], toFile: "/dev/null")
                    guard bytes == size else { throw ValidationError("downloaded \(bytes) of \(size) bytes") }
                    return ids[index]
                }
                report("download", size: size, level: level, result: downloads)
                _ = try await measure(ops: ids.count, concurrency: level) { index in
                    try await client.delete(ids[index])
                    return ids[index]
                }
            }
        }
        await client.shutdown()
    }

    struct Result {
        var values: [FileID]
        var latencies: [Double]
        var seconds: Double
    }

    func measure(ops: Int, concurrency: Int, _ body: @escaping @Sendable (Int) async throws -> FileID) async throws -> Result {
        let start = ContinuousClock.now
        var values: [FileID] = []
        var latencies: [Double] = []
        try await withThrowingTaskGroup(of: (FileID, Double).self) { group in
            var next = 0
            func launch() {
                let index = next
                next += 1
                group.addTask {
                    let begin = ContinuousClock.now
                    let value = try await body(index)
                    let elapsed = ContinuousClock.now - begin
                    return (value, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                }
            }
            for _ in 0..<min(concurrency, ops) { launch() }
            while let (value, latency) = try await group.next() {
                values.append(value)
                latencies.append(latency)
                if next < ops { launch() }
            }
        }
        let elapsed = ContinuousClock.now - start
        return Result(values: values, latencies: latencies.sorted(), seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func report(_ op: String, size: Int64, level: Int, result: Result) {
        let count = result.latencies.count
        let p50 = result.latencies[count / 2] * 1000
        let p99 = result.latencies[min(count - 1, Int(Double(count) * 0.99))] * 1000
        let opsPerSecond = Double(count) / result.seconds
        let megabytes = opsPerSecond * Double(size) / 1_000_000
        print(pad([label, op, sizeLabel(size), "\(level)", "\(count)", String(format: "%.0f", opsPerSecond), String(format: "%.1f", megabytes), String(format: "%.2f", p50), String(format: "%.2f", p99)]))
    }

    func sizeLabel(_ size: Int64) -> String {
        size >= 1 << 20 ? "\(size >> 20)M" : "\(size >> 10)K"
    }

    func pad(_ columns: [String]) -> String {
        let widths = [10, 9, 5, 5, 6, 8, 8, 8, 8]
        return zip(columns, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " ")
    }
}
