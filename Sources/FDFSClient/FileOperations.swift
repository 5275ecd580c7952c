import FDFSProtocol
import NIOCore

extension FDFSClient {
    // MARK: Delete, info, metadata

    /// Deletes a file (DELETE_FILE) on the storage the tracker names for updates.
    public func delete(_ id: FileID) async throws(FDFSClientError) {
        let endpoint = try await tracker.queryUpdate(id)
        _ = try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await connection.call(.deleteFile, body: FileRequest(id).encoded(), operation: "DELETE_FILE")
        }
    }

    /// Asks a storage for the file's size, creation time, CRC32 and source (QUERY_FILE_INFO).
    /// `computeCRC32: false` spares the server a full read of appender and slave files.
    public func fileInfo(_ id: FileID, computeCRC32: Bool = true) async throws(FDFSClientError) -> FileInfo {
        let endpoint = try await tracker.queryFetch(id)
        return try await fileInfo(id, on: endpoint, computeCRC32: computeCRC32)
    }

    /// QUERY_FILE_INFO on a given storage.
    public func fileInfo(_ id: FileID, on endpoint: StorageEndpoint, computeCRC32: Bool = true) async throws(FDFSClientError) -> FileInfo {
        var flags: FileInfoFlags = .silent
        if !computeCRC32 { flags.insert(.noCRC32) }
        let body = try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await connection.call(.queryFileInfo, body: FileRequest(id).encoded(), status: flags.rawValue, operation: "QUERY_FILE_INFO", maxResponse: 70)
        }
        return try Self.decode("QUERY_FILE_INFO", endpoint, body, FileInfo.decode)
    }

    /// What the generated name alone tells about a file, without asking any server (as the C
    /// client's `fdfs_get_file_info_ex` does for normal files).
    public static func localFileInfo(_ id: FileID) -> FileInfo {
        FileInfo(size: id.generated.size, createTimestamp: Int64(id.generated.timestamp), crc32: id.generated.crc32, sourceIP: id.generated.source.description)
    }

    /// Replaces (`overwrite`) or merges metadata (SET_METADATA).
    public func setMetadata(_ id: FileID, _ metadata: FDFSMetadata, operation: MetadataOperation = .overwrite) async throws(FDFSClientError) {
        let endpoint = try await tracker.queryUpdate(id)
        try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await Self.setMetadata(on: connection, id: id, metadata: metadata, operation: operation, endpoint: endpoint)
        }
    }

    static func setMetadata(on connection: FDFSConnection, id: FileID, metadata: FDFSMetadata, operation: MetadataOperation, endpoint: StorageEndpoint) async throws(FDFSClientError) {
        let request = SetMetadataRequest(file: FileRequest(id), operation: operation, metadata: metadata)
        _ = try await connection.call(.setMetadata, body: request.encoded(), operation: "SET_METADATA")
    }

    /// Reads the metadata (GET_METADATA). A file without metadata answers ENOENT from the
    /// server; this returns an empty set only when the caller asks with `missingIsEmpty`.
    public func getMetadata(_ id: FileID, missingIsEmpty: Bool = false) async throws(FDFSClientError) -> FDFSMetadata {
        let endpoint = try await tracker.queryFetch(id)
        do {
            let body = try await withStorage(endpoint) { connection throws(FDFSClientError) in
                try await connection.call(.getMetadata, body: FileRequest(id).encoded(), operation: "GET_METADATA", maxResponse: 4 << 20)
            }
            return FDFSMetadata.decode(body)
        } catch {
            if missingIsEmpty, error.status == .ENOENT { return FDFSMetadata() }
            throw error
        }
    }

    // MARK: Appender files

    /// Appends bytes to an appender file (APPEND_FILE).
    public func append(_ id: FileID, _ bytes: ByteBuffer) async throws(FDFSClientError) {
        try await append(id, length: Int64(bytes.readableBytes)) { connection, operation throws(FDFSClientError) in
            try await connection.write(bytes, operation: operation)
        }
    }

    /// Appends a local file to an appender file, streamed.
    public func append(_ id: FileID, filePath: String) async throws(FDFSClientError) {
        let file = try LocalFile(openForReading: filePath, operation: "APPEND_FILE")
        defer { file.close() }
        try await append(id, descriptor: file.descriptor, offset: 0, length: file.size)
    }

    /// Appends `length` bytes of an open local file, from `offset`, to an appender file, with
    /// `sendfile` (the descriptor stays open; the caller owns it).
    public func append(_ id: FileID, descriptor: CInt, offset: Int64, length: Int64) async throws(FDFSClientError) {
        try await append(id, length: length) { connection, operation throws(FDFSClientError) in
            try await connection.writeFile(descriptor: descriptor, offset: offset, length: length, operation: operation)
        }
    }

    func append(_ id: FileID, length: Int64, content: (FDFSConnection, String) async throws(FDFSClientError) -> Void) async throws(FDFSClientError) {
        let head = AppendRequestHead(remoteFilename: id.remoteFilename, length: length)
        let endpoint = try await tracker.queryUpdate(id)
        try await withStorage(endpoint) { connection throws(FDFSClientError) in
            var body = head.encoded()
            try await connection.send(FDFSHeader(bodyLength: Int64(body.readableBytes) + length, command: .appendFile), body: body)
            body.clear()
            try await content(connection, "APPEND_FILE")
            let reply = try await connection.readHead(operation: "APPEND_FILE")
            _ = try await connection.readBody(reply, operation: "APPEND_FILE", maxResponse: 0)
        }
    }

    /// Overwrites bytes of an appender file at `offset` (≤ its size; may extend it).
    public func modify(_ id: FileID, offset: Int64, _ bytes: ByteBuffer) async throws(FDFSClientError) {
        let length = Int64(bytes.readableBytes)
        let head = ModifyRequestHead(remoteFilename: id.remoteFilename, offset: offset, length: length)
        let endpoint = try await tracker.queryUpdate(id)
        try await withStorage(endpoint) { connection throws(FDFSClientError) in
            let body = head.encoded()
            try await connection.send(FDFSHeader(bodyLength: Int64(body.readableBytes) + length, command: .modifyFile), body: body)
            try await connection.write(bytes, operation: "MODIFY_FILE")
            let reply = try await connection.readHead(operation: "MODIFY_FILE")
            _ = try await connection.readBody(reply, operation: "MODIFY_FILE", maxResponse: 0)
        }
    }

    /// Truncates (or extends) an appender file (TRUNCATE_FILE).
    public func truncate(_ id: FileID, size: Int64) async throws(FDFSClientError) {
        guard size >= 0 else { throw FDFSClientError(.invalidArgument, operation: "TRUNCATE_FILE", message: "negative size \(size)") }
        let endpoint = try await tracker.queryUpdate(id)
        _ = try await withStorage(endpoint) { connection throws(FDFSClientError) in
            try await connection.call(.truncateFile, body: TruncateRequest(remoteFilename: id.remoteFilename, size: size).encoded(), operation: "TRUNCATE_FILE", maxResponse: 0)
        }
    }

    /// Turns an appender file into a normal one under a new name (REGENERATE_APPENDER_FILENAME).
    public func regenerateAppenderName(_ id: FileID) async throws(FDFSClientError) -> FileID {
        let endpoint = try await tracker.queryUpdate(id)
        let body = try await withStorage(endpoint) { connection throws(FDFSClientError) in
            var request = ByteBuffer()
            request.writeString(id.remoteFilename)
            return try await connection.call(.regenerateAppenderFilename, body: request, operation: "REGENERATE_APPENDER_FILENAME", maxResponse: 16 + FileID.maxRemoteFilenameLength)
        }
        return try Self.decode("REGENERATE_APPENDER_FILENAME", endpoint, body) { (b: ByteBuffer) throws(FDFSProtocolError) in try UploadResponse.decode(b).fileID() }
    }
}
