import NIOCore

// Storage-to-storage replication packets (reference §6.3). The group field of these packets is
// copied by the C server from an uninitialised buffer: only the text before the first NUL is
// meaningful, the rest may be garbage, so decoders read up to the NUL and ignore the rest.

/// REPORT_SERVER_ID (9): the first packet of a sync connection, naming the sender.
public struct ReportServerIDRequest: Hashable, Sendable {
    public static let size = 16
    public var storageID: String

    public init(storageID: String) { self.storageID = storageID }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(storageID, width: 16)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> ReportServerIDRequest {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "REPORT_SERVER_ID body must be 16 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "REPORT_SERVER_ID")
        return ReportServerIDRequest(storageID: try reader.fixedString("storage_id", width: 16))
    }
}

/// Checks a remote filename length field of a sync packet.
func syncNameLength(_ value: Int64, _ field: String, _ command: String) throws(FDFSProtocolError) -> Int {
    guard value >= 1, value <= Int64(FileID.maxRemoteFilenameLength) else {
        throw FDFSProtocolError(.malformed, "\(command) \(field) \(value) outside 1...\(FileID.maxRemoteFilenameLength)")
    }
    return Int(value)
}

/// The fixed part of SYNC_CREATE_FILE (16) and SYNC_UPDATE_FILE (18), filename included.
/// `fileSize` content bytes follow unless the header status is EEXIST.
public struct SyncFileHead: Hashable, Sendable {
    /// Bytes before the filename.
    public static let fixedSize = 36

    public var remoteFilename: String
    public var fileSize: Int64
    /// The source's timestamp of the binlog record.
    public var timestamp: UInt32
    public var group: String

    public init(remoteFilename: String, fileSize: Int64, timestamp: UInt32, group: String) {
        self.remoteFilename = remoteFilename
        self.fileSize = fileSize
        self.timestamp = timestamp
        self.group = group
    }

    /// Length of the encoded head.
    public var size: Int { Self.fixedSize + remoteFilename.utf8.count }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(fileSize)
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(remoteFilename)
        return buffer
    }

    /// Length of the filename announced by the first 8 bytes of a head (nil if fewer are there).
    public static func peekNameLength(_ head: ByteBuffer) throws(FDFSProtocolError) -> Int? {
        guard let value = head.getInteger(at: head.readerIndex, endianness: .big, as: Int64.self) else { return nil }
        return try syncNameLength(value, "filename_len", "SYNC_CREATE/UPDATE")
    }

    /// Decodes the head; with `contentFollows` the content must fill the rest of the frame,
    /// without it (status EEXIST) the frame must end after the filename.
    public static func decode(_ head: inout ByteBuffer, bodyLength: Int64, contentFollows: Bool) throws(FDFSProtocolError) -> SyncFileHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "SYNC_CREATE/UPDATE")
        let nameLength = try syncNameLength(try reader.int64("filename_len"), "filename_len", "SYNC_CREATE/UPDATE")
        let size = try reader.int64("file_size")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        let name = try reader.string("filename", length: nameLength)
        let headLength = Int64(fixedSize + nameLength)
        guard size >= 0, contentFollows ? (bodyLength - headLength == size) : (bodyLength == headLength) else {
            throw FDFSProtocolError(.malformed, "SYNC_CREATE/UPDATE file_size \(size) does not match pkg_len \(bodyLength)")
        }
        head = reader.buffer
        return SyncFileHead(remoteFilename: name, fileSize: size, timestamp: timestamp, group: group)
    }
}

/// SYNC_DELETE_FILE (17).
public struct SyncDeleteRequest: Hashable, Sendable {
    public var timestamp: UInt32
    public var group: String
    public var remoteFilename: String

    public init(timestamp: UInt32, group: String, remoteFilename: String) {
        self.timestamp = timestamp
        self.group = group
        self.remoteFilename = remoteFilename
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> SyncDeleteRequest {
        guard body.readableBytes > 20, body.readableBytes <= 20 + FileID.maxRemoteFilenameLength else {
            throw FDFSProtocolError(.malformed, "SYNC_DELETE body of \(body.readableBytes) bytes is outside 21...\(20 + FileID.maxRemoteFilenameLength)")
        }
        var reader = BodyReader(body, context: "SYNC_DELETE")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        return SyncDeleteRequest(timestamp: timestamp, group: group, remoteFilename: try reader.string("remote_filename", length: reader.remaining))
    }
}

/// SYNC_CREATE_LINK (19): `destFilename` becomes a symbolic link to `sourceFilename`.
public struct SyncLinkRequest: Hashable, Sendable {
    public var destFilename: String
    public var sourceFilename: String
    public var timestamp: UInt32
    public var group: String

    public init(destFilename: String, sourceFilename: String, timestamp: UInt32, group: String) {
        self.destFilename = destFilename
        self.sourceFilename = sourceFilename
        self.timestamp = timestamp
        self.group = group
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(destFilename.utf8.count))
        buffer.writeInt64(Int64(sourceFilename.utf8.count))
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(destFilename)
        buffer.writeString(sourceFilename)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> SyncLinkRequest {
        var reader = BodyReader(body, context: "SYNC_CREATE_LINK")
        let destLength = try syncNameLength(try reader.int64("dest_filename_len"), "dest_filename_len", "SYNC_CREATE_LINK")
        let sourceLength = try syncNameLength(try reader.int64("src_filename_len"), "src_filename_len", "SYNC_CREATE_LINK")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        let dest = try reader.string("dest_filename", length: destLength)
        let source = try reader.string("src_filename", length: sourceLength)
        try reader.expectEnd()
        return SyncLinkRequest(destFilename: dest, sourceFilename: source, timestamp: timestamp, group: group)
    }
}

/// The fixed part of SYNC_APPEND_FILE (25) and SYNC_MODIFY_FILE (35), filename included;
/// `length` content bytes follow.
public struct SyncModifyHead: Hashable, Sendable {
    public static let fixedSize = 44

    public var remoteFilename: String
    public var offset: Int64
    public var length: Int64
    public var timestamp: UInt32
    public var group: String

    public init(remoteFilename: String, offset: Int64, length: Int64, timestamp: UInt32, group: String) {
        self.remoteFilename = remoteFilename
        self.offset = offset
        self.length = length
        self.timestamp = timestamp
        self.group = group
    }

    public var size: Int { Self.fixedSize + remoteFilename.utf8.count }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(offset)
        buffer.writeInt64(length)
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func peekNameLength(_ head: ByteBuffer) throws(FDFSProtocolError) -> Int? {
        guard let value = head.getInteger(at: head.readerIndex, endianness: .big, as: Int64.self) else { return nil }
        return try syncNameLength(value, "filename_len", "SYNC_APPEND/MODIFY")
    }

    public static func decode(_ head: inout ByteBuffer, bodyLength: Int64) throws(FDFSProtocolError) -> SyncModifyHead {
        guard bodyLength >= 0 else { throw FDFSProtocolError(.malformed, "\(Self.self): negative pkg_len \(bodyLength)") }
        var reader = BodyReader(head, context: "SYNC_APPEND/MODIFY")
        let nameLength = try syncNameLength(try reader.int64("filename_len"), "filename_len", "SYNC_APPEND/MODIFY")
        let offset = try reader.int64("start_offset")
        let length = try reader.int64("length")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        let name = try reader.string("filename", length: nameLength)
        guard offset >= 0, length >= 0, bodyLength - Int64(fixedSize + nameLength) == length, offset <= Int64.max - length else {
            throw FDFSProtocolError(.malformed, "SYNC_APPEND/MODIFY offset \(offset) / length \(length) do not match pkg_len \(bodyLength)")
        }
        head = reader.buffer
        return SyncModifyHead(remoteFilename: name, offset: offset, length: length, timestamp: timestamp, group: group)
    }
}

/// SYNC_TRUNCATE_FILE (37).
public struct SyncTruncateRequest: Hashable, Sendable {
    public var remoteFilename: String
    public var oldSize: Int64
    public var newSize: Int64
    public var timestamp: UInt32
    public var group: String

    public init(remoteFilename: String, oldSize: Int64, newSize: Int64, timestamp: UInt32, group: String) {
        self.remoteFilename = remoteFilename
        self.oldSize = oldSize
        self.newSize = newSize
        self.timestamp = timestamp
        self.group = group
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(remoteFilename.utf8.count))
        buffer.writeInt64(oldSize)
        buffer.writeInt64(newSize)
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(remoteFilename)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> SyncTruncateRequest {
        var reader = BodyReader(body, context: "SYNC_TRUNCATE")
        let nameLength = try syncNameLength(try reader.int64("filename_len"), "filename_len", "SYNC_TRUNCATE")
        let oldSize = try reader.int64("old_file_size")
        let newSize = try reader.int64("new_file_size")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        let name = try reader.string("filename", length: nameLength)
        try reader.expectEnd()
        guard oldSize >= 0, newSize >= 0 else {
            throw FDFSProtocolError(.malformed, "SYNC_TRUNCATE sizes \(oldSize) / \(newSize) must not be negative")
        }
        return SyncTruncateRequest(remoteFilename: name, oldSize: oldSize, newSize: newSize, timestamp: timestamp, group: group)
    }
}

/// SYNC_RENAME_FILE (40): an appender file renamed to a regenerated normal name.
public struct SyncRenameRequest: Hashable, Sendable {
    public var newFilename: String
    public var oldFilename: String
    public var timestamp: UInt32
    public var group: String

    public init(newFilename: String, oldFilename: String, timestamp: UInt32, group: String) {
        self.newFilename = newFilename
        self.oldFilename = oldFilename
        self.timestamp = timestamp
        self.group = group
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInt64(Int64(newFilename.utf8.count))
        buffer.writeInt64(Int64(oldFilename.utf8.count))
        buffer.writeInteger(timestamp, endianness: .big)
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(newFilename)
        buffer.writeString(oldFilename)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> SyncRenameRequest {
        var reader = BodyReader(body, context: "SYNC_RENAME")
        let newLength = try syncNameLength(try reader.int64("new_filename_len"), "new_filename_len", "SYNC_RENAME")
        let oldLength = try syncNameLength(try reader.int64("old_filename_len"), "old_filename_len", "SYNC_RENAME")
        let timestamp = UInt32(bitPattern: try reader.int32("timestamp"))
        let group = try reader.fixedString("group_name", width: 16)
        let newName = try reader.string("new_filename", length: newLength)
        let oldName = try reader.string("old_filename", length: oldLength)
        try reader.expectEnd()
        return SyncRenameRequest(newFilename: newName, oldFilename: oldName, timestamp: timestamp, group: group)
    }
}
