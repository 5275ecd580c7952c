import NIOCore

/// The fixed part of UPLOAD_FILE (11) and UPLOAD_APPENDER_FILE (23); `fileSize` content bytes
/// follow it on the wire.
public struct UploadRequestHead: Hashable, Sendable {
    public static let size = 15
    /// Store path index; −1 (0xFF) lets the storage choose.
    public var storePathIndex: Int8
    public var fileSize: Int64
    /// Extension without the dot, at most 6 bytes of `[A-Za-z0-9_.-]`.
    public var fileExtension: String

    public init(storePathIndex: Int8, fileSize: Int64, fileExtension: String) {
        self.storePathIndex = storePathIndex
        self.fileSize = fileSize
        self.fileExtension = fileExtension
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(storePathIndex)
        buffer.writeInt64(fileSize)
        buffer.writeFixedString(fileExtension, width: 6)
        return buffer
    }

    /// Decodes the head from the first 15 bytes and checks it against the frame's length.
    public static func decode(_ head: ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> UploadRequestHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "UPLOAD")
        let index = Int8(bitPattern: try reader.byte("store_path_index"))
        let size = try reader.int64("file_size")
        let ext = try reader.fixedString("ext_name", width: 6)
        guard size >= 0, size == bodyLength - Int64(Self.size) else {
            throw FDFSProtocolError(.malformed, "UPLOAD file_size \(size) does not match pkg_len \(bodyLength)")
        }
        try FileID.validateNamePart(ext, what: "extension", maxLength: 6, allowEmpty: true)
        return UploadRequestHead(storePathIndex: index, fileSize: size, fileExtension: ext)
    }
}

/// The fixed part of UPLOAD_SLAVE_FILE (21), master filename included; content follows.
public struct UploadSlaveRequestHead: Hashable, Sendable {
    public var masterRemoteFilename: String
    public var fileSize: Int64
    public var prefix: String
    public var fileExtension: String

    public init(masterRemoteFilename: String, fileSize: Int64, prefix: String, fileExtension: String) {
        self.masterRemoteFilename = masterRemoteFilename
        self.fileSize = fileSize
        self.prefix = prefix
        self.fileExtension = fileExtension
    }

    /// Length of the encoded head.
    public var size: Int { 8 + 8 + 16 + 6 + masterRemoteFilename.utf8.count }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(masterRemoteFilename.utf8.count))
        buffer.writeInt64(fileSize)
        buffer.writeFixedString(prefix, width: 16)
        buffer.writeFixedString(fileExtension, width: 6)
        buffer.writeString(masterRemoteFilename)
        return buffer
    }

    /// Bytes of the fixed part before the master filename.
    public static let fixedSize = 38

    /// Decodes the head; `head` must hold at least the fixed part and the master name.
    public static func decode(_ head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> UploadSlaveRequestHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "UPLOAD_SLAVE")
        let masterLength = try reader.int64("master_filename_len")
        let size = try reader.int64("file_size")
        let prefix = try reader.fixedString("prefix_name", width: 16)
        let ext = try reader.fixedString("ext_name", width: 6)
        guard masterLength > 10, masterLength < 128 else {
            throw FDFSProtocolError(.malformed, "UPLOAD_SLAVE master_filename_len \(masterLength) outside 11...127")
        }
        let master = try reader.string("master_filename", length: Int(masterLength))
        guard size >= 0, size == bodyLength - Int64(fixedSize) - masterLength else {
            throw FDFSProtocolError(.malformed, "UPLOAD_SLAVE file_size \(size) does not match pkg_len \(bodyLength)")
        }
        try FileID.validateNamePart(prefix, what: "slave prefix", maxLength: 16, allowEmpty: false)
        try FileID.validateNamePart(ext, what: "extension", maxLength: 6, allowEmpty: true)
        head = reader.buffer
        return UploadSlaveRequestHead(masterRemoteFilename: master, fileSize: size, prefix: prefix, fileExtension: ext)
    }
}

/// Reply to the upload commands and to REGENERATE_APPENDER_FILENAME: group + remote
/// filename, the same layout as a ``FileRequest``.
public typealias UploadResponse = FileRequest

/// DOWNLOAD_FILE (14) request.
public struct DownloadRequest: Hashable, Sendable {
    public var offset: Int64
    /// 0 means "to the end of the file".
    public var length: Int64
    public var file: FileRequest

    public init(offset: Int64, length: Int64, file: FileRequest) {
        self.offset = offset
        self.length = length
        self.file = file
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(offset)
        buffer.writeInt64(length)
        var rest = file.encoded()
        buffer.writeBuffer(&rest)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> DownloadRequest {
        var reader = BodyReader(body, context: "DOWNLOAD")
        let offset = try reader.int64("file_offset")
        let length = try reader.int64("download_bytes")
        guard offset >= 0, length >= 0 else {
            throw FDFSProtocolError(.malformed, "DOWNLOAD offset \(offset) and length \(length) must not be negative")
        }
        return DownloadRequest(offset: offset, length: length, file: try FileRequest.decode(reader.buffer))
    }
}

/// Operation flag of SET_METADATA.
public enum MetadataOperation: UInt8, Sendable {
    /// Replace the whole set (`O`).
    case overwrite = 0x4F
    /// Merge into the existing set (`M`).
    case merge = 0x4D
}

/// SET_METADATA (13) request.
public struct SetMetadataRequest: Hashable, Sendable {
    public var file: FileRequest
    public var operation: MetadataOperation
    public var metadata: FDFSMetadata

    public init(file: FileRequest, operation: MetadataOperation, metadata: FDFSMetadata) {
        self.file = file
        self.operation = operation
        self.metadata = metadata
    }

    public func encoded() -> ByteBuffer {
        var meta = metadata.encoded()
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(file.remoteFilename.utf8.count))
        buffer.writeInt64(Int64(meta.readableBytes))
        buffer.writeInteger(operation.rawValue)
        buffer.writeFixedString(file.group, width: 16)
        buffer.writeString(file.remoteFilename)
        buffer.writeBuffer(&meta)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> SetMetadataRequest {
        var reader = BodyReader(body, context: "SET_METADATA")
        let nameLength = try reader.int64("filename_len")
        let metaLength = try reader.int64("meta_size")
        guard nameLength >= 1, nameLength <= 127 else {
            throw FDFSProtocolError(.malformed, "SET_METADATA filename_len \(nameLength) outside 1...127")
        }
        guard metaLength >= 0, metaLength == Int64(body.readableBytes) - 33 - nameLength else {
            throw FDFSProtocolError(.malformed, "SET_METADATA meta_size \(metaLength) does not match the body")
        }
        guard let operation = MetadataOperation(rawValue: try reader.byte("op_flag")) else {
            throw FDFSProtocolError(.malformed, "SET_METADATA op_flag must be 'O' or 'M'")
        }
        let group = try reader.fixedString("group_name", width: 16)
        let name = try reader.string("filename", length: Int(nameLength))
        let meta = try reader.bytes("metadata", length: Int(metaLength))
        return SetMetadataRequest(file: FileRequest(group: group, remoteFilename: name), operation: operation, metadata: FDFSMetadata.decode(meta))
    }
}

/// Reply to QUERY_FILE_INFO (22).
public struct FileInfo: Hashable, Sendable {
    public var size: Int64
    public var createTimestamp: Int64
    public var crc32: UInt32
    public var sourceIP: String

    public init(size: Int64, createTimestamp: Int64, crc32: UInt32, sourceIP: String) {
        self.size = size
        self.createTimestamp = createTimestamp
        self.crc32 = crc32
        self.sourceIP = sourceIP
    }

    public func encoded(profile: WireProfile = .v6_16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(size)
        buffer.writeInt64(createTimestamp)
        buffer.writeInt64(Int64(crc32))
        buffer.writeFixedString(sourceIP, width: profile.ipFieldWidth)
        return buffer
    }

    /// Accepts the 40-byte and the 70-byte layouts.
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> FileInfo {
        guard body.readableBytes == 40 || body.readableBytes == 70 else {
            throw FDFSProtocolError(.malformed, "QUERY_FILE_INFO reply must be 40 or 70 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "QUERY_FILE_INFO reply")
        let size = try reader.int64("file_size")
        let created = try reader.int64("create_timestamp")
        let crc = try reader.int64("crc32")
        let ip = try reader.fixedString("source_ip_addr", width: body.readableBytes - 24)
        return FileInfo(size: size, createTimestamp: created, crc32: UInt32(truncatingIfNeeded: crc), sourceIP: ip)
    }
}

/// Flags carried in the header status byte of QUERY_FILE_INFO (≥ 6.15.1).
public struct FileInfoFlags: OptionSet, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Do not compute the CRC32 of appender and slave files.
    public static let noCRC32 = FileInfoFlags(rawValue: 1)
    /// Do not log a missing file.
    public static let silent = FileInfoFlags(rawValue: 2)
}

/// The fixed part of APPEND_FILE (24); content follows.
public struct AppendRequestHead: Hashable, Sendable {
    public var remoteFilename: String
    public var length: Int64

    public init(remoteFilename: String, length: Int64) {
        self.remoteFilename = remoteFilename
        self.length = length
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(length)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func decode(_ head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> AppendRequestHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "APPEND")
        let nameLength = try appenderNameLength(try reader.int64("appender_filename_len"), "APPEND")
        let length = try reader.int64("file_size")
        let name = try reader.string("appender_filename", length: nameLength)
        guard length >= 0, length == bodyLength - 16 - Int64(nameLength) else {
            throw FDFSProtocolError(.malformed, "APPEND file_size \(length) does not match pkg_len \(bodyLength)")
        }
        head = reader.buffer
        return AppendRequestHead(remoteFilename: name, length: length)
    }
}

/// The fixed part of MODIFY_FILE (34); content follows.
public struct ModifyRequestHead: Hashable, Sendable {
    public var remoteFilename: String
    public var offset: Int64
    public var length: Int64

    public init(remoteFilename: String, offset: Int64, length: Int64) {
        self.remoteFilename = remoteFilename
        self.offset = offset
        self.length = length
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(offset)
        buffer.writeInt64(length)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func decode(_ head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> ModifyRequestHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "MODIFY")
        let nameLength = try appenderNameLength(try reader.int64("appender_filename_len"), "MODIFY")
        let offset = try reader.int64("file_offset")
        let length = try reader.int64("file_size")
        let name = try reader.string("appender_filename", length: nameLength)
        guard offset >= 0, length >= 0, length == bodyLength - 24 - Int64(nameLength) else {
            throw FDFSProtocolError(.malformed, "MODIFY offset \(offset) / file_size \(length) do not match pkg_len \(bodyLength)")
        }
        head = reader.buffer
        return ModifyRequestHead(remoteFilename: name, offset: offset, length: length)
    }
}

/// TRUNCATE_FILE (36) request.
public struct TruncateRequest: Hashable, Sendable {
    public var remoteFilename: String
    public var size: Int64

    public init(remoteFilename: String, size: Int64) {
        self.remoteFilename = remoteFilename
        self.size = size
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(size)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> TruncateRequest {
        var reader = BodyReader(body, context: "TRUNCATE")
        let nameLength = try appenderNameLength(try reader.int64("appender_filename_len"), "TRUNCATE")
        let size = try reader.int64("truncated_file_size")
        let name = try reader.string("appender_filename", length: nameLength)
        try reader.expectEnd()
        guard size >= 0 else { throw FDFSProtocolError(.malformed, "TRUNCATE size \(size) is negative") }
        return TruncateRequest(remoteFilename: name, size: size)
    }
}

/// Appender commands require a name length of 44 ... 127.
func appenderNameLength(_ value: Int64, _ command: String) throws(FDFSProtocolError) -> Int {
    guard value >= Int64(FileID.normalRemoteFilenameLength), value <= Int64(FileID.maxRemoteFilenameLength) else {
        throw FDFSProtocolError(.malformed, "\(command) appender_filename_len \(value) outside 44...127")
    }
    return Int(value)
}
