import NIOCore

/// Body of requests that carry only a group name (104, 107, 90).
public struct GroupNameRequest: Hashable, Sendable {
    public var group: String
    public init(group: String) { self.group = group }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> GroupNameRequest {
        guard body.readableBytes == 16 else {
            throw FDFSProtocolError(.malformed, "group name request must be 16 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "group name request")
        return GroupNameRequest(group: try reader.fixedString("group_name", width: 16))
    }
}

/// Body of requests that name a file by group and remote filename (102, 103, 105 to the
/// tracker; 12, 15, 22 to a storage).
public struct FileRequest: Hashable, Sendable {
    public var group: String
    public var remoteFilename: String

    public init(group: String, remoteFilename: String) {
        self.group = group
        self.remoteFilename = remoteFilename
    }

    public init(_ id: FileID) { self.init(group: id.group, remoteFilename: id.remoteFilename) }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        buffer.writeString(remoteFilename)
        return buffer
    }

    /// Decodes and checks the length limits of the tracker (16 + 22 ... 143 bytes).
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> FileRequest {
        guard body.readableBytes > 16, body.readableBytes <= 16 + FileID.maxRemoteFilenameLength else {
            throw FDFSProtocolError(.malformed, "file request body of \(body.readableBytes) bytes is outside 17...143")
        }
        var reader = BodyReader(body, context: "file request")
        let group = try reader.fixedString("group_name", width: 16)
        return FileRequest(group: group, remoteFilename: try reader.string("remote_filename", length: reader.remaining))
    }

    /// The validated file ID.
    public func fileID() throws(FDFSProtocolError) -> FileID {
        try FileID(group: group, remoteFilename: remoteFilename)
    }
}

/// One storage server as a tracker names it in query replies.
public struct StorageEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var ip: String
    public var port: Int

    public init(ip: String, port: Int) {
        self.ip = ip
        self.port = port
    }

    public var description: String { ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
}

/// Reply to QUERY_STORE_*_ONE (101 / 104): where to upload.
public struct StoreTarget: Hashable, Sendable {
    public var group: String
    public var storage: StorageEndpoint
    public var storePathIndex: UInt8

    public init(group: String, storage: StorageEndpoint, storePathIndex: UInt8) {
        self.group = group
        self.storage = storage
        self.storePathIndex = storePathIndex
    }

    public func encoded(profile: WireProfile = .v6_16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        buffer.writeFixedString(storage.ip, width: profile.queryIPWidth)
        buffer.writeInt64(Int64(storage.port))
        buffer.writeInteger(storePathIndex)
        return buffer
    }

    /// Accepts the 40-byte (15-byte IP) and the 70-byte (45-byte IP) layouts.
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StoreTarget {
        let ipWidth: Int
        switch body.readableBytes {
        case 40: ipWidth = 15
        case 70: ipWidth = 45
        default: throw FDFSProtocolError(.malformed, "QUERY_STORE reply must be 40 or 70 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "QUERY_STORE reply")
        let group = try reader.fixedString("group_name", width: 16)
        let ip = try reader.fixedString("ip_addr", width: ipWidth)
        let port = try reader.int64("port")
        let index = try reader.byte("store_path_index")
        return StoreTarget(group: group, storage: StorageEndpoint(ip: ip, port: Int(port)), storePathIndex: index)
    }
}

/// Reply to QUERY_STORE_*_ALL (106 / 107): every writable storage of the chosen group.
public struct StoreTargets: Hashable, Sendable {
    public var group: String
    public var storages: [StorageEndpoint]
    public var storePathIndex: UInt8

    public init(group: String, storages: [StorageEndpoint], storePathIndex: UInt8) {
        self.group = group
        self.storages = storages
        self.storePathIndex = storePathIndex
    }

    public func encoded(profile: WireProfile = .v6_16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        for storage in storages {
            buffer.writeFixedString(storage.ip, width: profile.queryIPWidth)
            buffer.writeInt64(Int64(storage.port))
        }
        buffer.writeInteger(storePathIndex)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StoreTargets {
        let entries = body.readableBytes - 17
        let ipWidth: Int
        if entries > 0 && entries % 23 == 0 { ipWidth = 15 } else if entries > 0 && entries % 53 == 0 { ipWidth = 45 } else {
            throw FDFSProtocolError(.malformed, "QUERY_STORE_ALL reply of \(body.readableBytes) bytes fits no layout")
        }
        var reader = BodyReader(body, context: "QUERY_STORE_ALL reply")
        let group = try reader.fixedString("group_name", width: 16)
        var storages: [StorageEndpoint] = []
        for _ in 0..<(entries / (ipWidth + 8)) {
            let ip = try reader.fixedString("ip_addr", width: ipWidth)
            let port = try reader.int64("port")
            storages.append(StorageEndpoint(ip: ip, port: Int(port)))
        }
        let index = try reader.byte("store_path_index")
        return StoreTargets(group: group, storages: storages, storePathIndex: index)
    }
}

/// Reply to QUERY_FETCH_ONE (102) and QUERY_UPDATE (103), and to QUERY_FETCH_ALL (105), which
/// lists several storages.
public struct FetchTargets: Hashable, Sendable {
    public var group: String
    public var storages: [StorageEndpoint]

    public init(group: String, storages: [StorageEndpoint]) {
        self.group = group
        self.storages = storages
    }

    /// Encodes. With `profile.fetchAllWithPorts` false, servers after the first carry no port
    /// (the classic FETCH_ALL layout, which assumes one port per group).
    public func encoded(profile: WireProfile = .v6_16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        for (index, storage) in storages.enumerated() {
            buffer.writeFixedString(storage.ip, width: profile.queryIPWidth)
            if index == 0 || profile.fetchAllWithPorts { buffer.writeInt64(Int64(storage.port)) }
        }
        return buffer
    }

    /// Decodes every known layout: 16 + N × (ip + port) (≥ 6.16, and always for N = 1) and
    /// the classic group + ip + port + (N − 1) × ip, with 15- or 45-byte IPs.
    ///
    /// Lengths alone are ambiguous: the 69-byte IPv6-sized reply for one server is also
    /// 39 + 2 × 15, the classic IPv4 layout for three. Every layout that fits the length is
    /// tried in turn, and the first one whose addresses are non-empty and whose ports are in
    /// 1 ... 65535 wins (a port read from the middle of an IP field is 0 or huge).
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> FetchTargets {
        let length = body.readableBytes
        var layouts: [(ipWidth: Int, portsEverywhere: Bool)] = []
        for ipWidth in [15, 45] {
            if length > 16 && (length - 16) % (ipWidth + 8) == 0 { layouts.append((ipWidth, true)) }
            if length > 24 + ipWidth && (length - 24 - ipWidth) % ipWidth == 0 { layouts.append((ipWidth, false)) }
        }
        guard !layouts.isEmpty else {
            throw FDFSProtocolError(.malformed, "QUERY_FETCH reply of \(length) bytes fits no layout")
        }
        for layout in layouts {
            guard let targets = try? decode(body, ipWidth: layout.ipWidth, portsEverywhere: layout.portsEverywhere) else { continue }
            if targets.storages.allSatisfy({ !$0.ip.isEmpty && (1...65535).contains($0.port) }) { return targets }
        }
        throw FDFSProtocolError(.malformed, "QUERY_FETCH reply of \(length) bytes has no layout with valid addresses and ports")
    }

    private static func decode(_ body: ByteBuffer, ipWidth: Int, portsEverywhere: Bool) throws(FDFSProtocolError) -> FetchTargets {
        var reader = BodyReader(body, context: "QUERY_FETCH reply")
        let group = try reader.fixedString("group_name", width: 16)
        var storages: [StorageEndpoint] = []
        var groupPort = 0
        while reader.remaining > 0 {
            let ip = try reader.fixedString("ip_addr", width: ipWidth)
            if storages.isEmpty || portsEverywhere {
                groupPort = Int(truncatingIfNeeded: try reader.int64("port"))
            }
            storages.append(StorageEndpoint(ip: ip, port: groupPort))
        }
        return FetchTargets(group: group, storages: storages)
    }
}
