import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import class FDFSTestSupport.ChildProcess
import enum FDFSTestSupport.Processes
import class FDFSTestSupport.TemporaryDirectory

/// One `fdfs-storaged` process with its own temp directory and config.
final class StorageNode: @unchecked Sendable {
    let dir: TemporaryDirectory
    let ip: String
    let port: Int
    let httpPort: Int
    let group: String
    let trackers: [String]
    let extraConfig: String
    let networkTimeout: Int
    let heartBeatInterval: Int
    var process: ChildProcess?
    private var starts = 0

    init(ip: String = "127.0.0.1", port: Int? = nil, group: String = "group1", trackers: [String] = [], httpPort: Int? = nil, extraConfig: String = "", networkTimeout: Int = 10, heartBeatInterval: Int = 1) {
        self.dir = TemporaryDirectory("fdfs-storaged")
        self.ip = ip
        self.port = port ?? freePort(host: ip)
        self.httpPort = httpPort ?? 0
        self.group = group
        self.trackers = trackers
        self.extraConfig = extraConfig
        self.networkTimeout = networkTimeout
        self.heartBeatInterval = heartBeatInterval
    }

    var basePath: String { dir.path + "/base" }
    var storePath: String { dir.path + "/store0" }
    var configPath: String { dir.path + "/storage.conf" }
    var endpoint: StorageEndpoint { StorageEndpoint(ip: ip, port: port) }

    /// The local file of a stored ID.
    func localPath(_ id: FileID) -> String { storePath + "/data/" + id.dataRelativePath }

    var configText: String {
        var text = """
        # written by the storage tests
        group_name = \(group)
        bind_addr = \(ip)
        port = \(port)
        base_path = \(basePath)
        store_path_count = 1
        store_path0 = \(storePath)
        subdir_count_per_path = 4
        heart_beat_interval = \(heartBeatInterval)
        stat_report_interval = 1
        sync_wait_msec = 20
        network_timeout = \(networkTimeout)
        connect_timeout = 2
        http.server_port = \(httpPort)
        allow_hosts = 127.0.0.[1-255]

        """
        for tracker in trackers { text += "tracker_server = \(tracker)\n" }
        return text + extraConfig + "\n"
    }

    func start() async throws {
        try FileManager.default.createDirectory(atPath: basePath, withIntermediateDirectories: true)
        try configText.write(toFile: configPath, atomically: true, encoding: .utf8)
        starts += 1
        let process = try ChildProcess(daemon: try Processes.builtExecutable("fdfs-storaged"), [configPath, "--log-level", "debug"], log: dir.path + "/storaged.\(starts).log")
        self.process = process
        let ip = self.ip, port = self.port
        try await waitUntil(20, "storage \(ip):\(port) to listen") {
            guard process.isRunning else { throw TestFailure("fdfs-storaged exited: \(process.log)") }
            return isListening(host: ip, port: port)
        }
    }

    func stop() { process?.stop() }
    func kill9() { process?.kill9() }

    /// Stops the process and deletes the directory.
    func destroy() {
        stop()
        dir.remove()
    }

    /// All logs written so far.
    var logs: String {
        (1...max(starts, 1)).map { (try? String(contentsOfFile: dir.path + "/storaged.\($0).log", encoding: .utf8)) ?? "" }.joined()
    }
}

/// Raw storage requests over one ``FDFSConnection`` (no tracker involved).
struct StorageClient {
    let connection: FDFSConnection
    let group: String

    static func connect(_ node: StorageNode) async throws -> StorageClient {
        StorageClient(connection: try await FDFSConnection.connect(host: node.ip, port: node.port, connectTimeout: .seconds(5), networkTimeout: .seconds(20)), group: node.group)
    }

    func close() { connection.close() }

    func upload(_ bytes: [UInt8], ext: String = "", appender: Bool = false, pathIndex: Int8 = -1) async throws -> FileID {
        let head = UploadRequestHead(storePathIndex: pathIndex, fileSize: Int64(bytes.count), fileExtension: ext)
        var body = head.encoded()
        body.writeBytes(bytes)
        let reply = try await connection.call(appender ? .uploadAppenderFile : .uploadFile, body: body)
        return try UploadResponse.decode(reply).fileID()
    }

    func uploadSlave(master: FileID, prefix: String, ext: String, _ bytes: [UInt8]) async throws -> FileID {
        let head = UploadSlaveRequestHead(masterRemoteFilename: master.remoteFilename, fileSize: Int64(bytes.count), prefix: prefix, fileExtension: ext)
        var body = head.encoded()
        body.writeBytes(bytes)
        return try UploadResponse.decode(try await connection.call(.uploadSlaveFile, body: body)).fileID()
    }

    func download(_ id: FileID, offset: Int64 = 0, length: Int64 = 0) async throws -> [UInt8] {
        let request = DownloadRequest(offset: offset, length: length, file: FileRequest(id))
        let body = try await connection.call(.downloadFile, body: request.encoded(), maxResponse: 1 << 30)
        return Array(body.readableBytesView)
    }

    func delete(_ id: FileID) async throws {
        _ = try await connection.call(.deleteFile, body: FileRequest(id).encoded())
    }

    func info(_ id: FileID, flags: UInt8 = 0) async throws -> FileInfo {
        try FileInfo.decode(try await connection.call(.queryFileInfo, body: FileRequest(id).encoded(), status: flags))
    }

    func setMetadata(_ id: FileID, _ pairs: [(String, String)], _ operation: MetadataOperation) async throws {
        let request = SetMetadataRequest(file: FileRequest(id), operation: operation, metadata: try FDFSMetadata(pairs))
        _ = try await connection.call(.setMetadata, body: request.encoded())
    }

    func getMetadata(_ id: FileID) async throws -> [UInt8] {
        Array(try await connection.call(.getMetadata, body: FileRequest(id).encoded()).readableBytesView)
    }

    func append(_ id: FileID, _ bytes: [UInt8]) async throws {
        var body = AppendRequestHead(remoteFilename: id.remoteFilename, length: Int64(bytes.count)).encoded()
        body.writeBytes(bytes)
        _ = try await connection.call(.appendFile, body: body, maxResponse: 0)
    }

    func modify(_ id: FileID, offset: Int64, _ bytes: [UInt8]) async throws {
        var body = ModifyRequestHead(remoteFilename: id.remoteFilename, offset: offset, length: Int64(bytes.count)).encoded()
        body.writeBytes(bytes)
        _ = try await connection.call(.modifyFile, body: body, maxResponse: 0)
    }

    func truncate(_ id: FileID, size: Int64) async throws {
        _ = try await connection.call(.truncateFile, body: TruncateRequest(remoteFilename: id.remoteFilename, size: size).encoded(), maxResponse: 0)
    }

    func regenerate(_ id: FileID) async throws -> FileID {
        var body = ByteBuffer()
        body.writeString(id.remoteFilename)
        return try UploadResponse.decode(try await connection.call(.regenerateAppenderFilename, body: body)).fileID()
    }
}

/// The status a failed call reported.
func statusOf(_ body: () async throws -> Void) async -> FDFSStatus? {
    do {
        try await body()
        return .ok
    } catch let error as FDFSClientError {
        return error.status
    } catch {
        return nil
    }
}
