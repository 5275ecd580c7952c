import ArgumentParser
import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore

struct Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Upload files; prints one file ID per line.")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "Files to upload.") var files: [String]
    @Option(help: "Group to upload to (default: the tracker chooses).") var group: String?
    @Flag(help: "Upload appender files (can be appended to, modified, truncated).") var appender = false
    @Option(help: "Extension to record (default: the file's own).") var ext: String?
    @Option(name: .customLong("meta"), help: "Metadata key=value (repeatable).") var meta: [String] = []

    func run() async throws {
        let metadata = try parseMetadata(meta)
        let ids = try await cluster.run { client in
            var ids: [String] = []
            for file in files {
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? 0
                let bar = ProgressBar(total: size, label: "upload")
                let options = UploadOptions(group: group, fileExtension: ext ?? "", appender: appender, metadata: metadata, progress: { bar.update($0) })
                let id = try await client.upload(filePath: file, options: options)
                bar.finish()
                if cluster.json { ids.append(id.description) } else { print(id.description) }
            }
            return ids
        }
        if cluster.json { printJSON(zip(files, ids).map { ["file": $0, "file_id": $1] }) }
    }
}

struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Download a file (to OUT, or to stdout with '-').")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "File ID.") var fileID: String
    @Argument(help: "Output file (default: the name part of the ID; '-' for stdout).") var output: String?
    @Option(help: "First byte to download.") var offset: Int64 = 0
    @Option(help: "Number of bytes (0 = to the end).") var length: Int64 = 0
    @Option(help: "Download from this storage (HOST:PORT) instead of the one the tracker names, with no failover.")
    var storage: String?

    func run() async throws {
        let id = try parseFileID(fileID)
        let target = output ?? id.name
        let endpoint = try storage.map(parseStorage)
        let bytes = try await cluster.run { client -> Int64 in
            /// One download, from `endpoint` alone when given, else with the client's failover.
            func download(_ sink: (ByteBuffer) throws(FDFSClientError) -> Void) async throws(FDFSClientError) -> Int64 {
                guard let endpoint else { return try await client.download(id, offset: offset, length: length, into: sink) }
                var count: Int64 = 0
                try await client.downloadOnce(id, from: endpoint, offset: offset, length: length) { chunk throws(FDFSClientError) in
                    count += Int64(chunk.readableBytes)
                    try sink(chunk)
                }
                return count
            }
            if target == "-" {
                let out = FileHandle.standardOutput
                return try await download { chunk in out.write(Data(chunk.readableBytesView)) }
            }
            let total = length > 0 ? length : max(id.generated.size - offset, 0)
            let bar = ProgressBar(total: id.kind == .normal ? total : 0, label: "download")
            let file = try FileHandleSink(path: target)
            defer { file.close() }
            var done: Int64 = 0
            let count = try await download { chunk throws(FDFSClientError) in
                try file.write(chunk)
                done += Int64(chunk.readableBytes)
                bar.update(done)
            }
            bar.finish()
            return count
        }
        if cluster.json { printJSON(["file_id": id.description, "output": target, "bytes": bytes]) }
    }
}

/// Writes downloaded chunks to a local file.
struct FileHandleSink {
    let descriptor: Int32
    let path: String

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        self.path = path
        guard descriptor >= 0 else { throw CLIError("cannot create \(path): \(String(cString: strerror(errno)))") }
    }

    func write(_ chunk: ByteBuffer) throws(FDFSClientError) {
        try chunk.withUnsafeReadableBytes { bytes throws(FDFSClientError) in
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FDFSClientError(.localIO, operation: "download", message: "cannot write \(path): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    func close() { Foundation.close(descriptor) }
}

struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Append a local file to an appender file.")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "Appender file ID.") var fileID: String
    @Argument(help: "Local file whose bytes are appended.") var file: String

    func run() async throws {
        let id = try parseFileID(fileID)
        try await cluster.run { client in try await client.append(id, filePath: file) }
        if cluster.json { printJSON(["file_id": id.description, "appended": file]) }
    }
}

struct Truncate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Truncate (or extend) an appender file.")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "Appender file ID.") var fileID: String
    @Argument(help: "New size in bytes.") var size: Int64

    func run() async throws {
        let id = try parseFileID(fileID)
        try await cluster.run { client in try await client.truncate(id, size: size) }
        if cluster.json { printJSON(["file_id": id.description, "size": size]) }
    }
}
