import FDFSProtocol
import FDFSStorage
import NIOCore

/// Every decoder of untrusted input, as fuzz targets: frame headers and the frame splitter,
/// every request and response body, file IDs and generated names, metadata, configuration
/// text, and the HTTP port's request target, Range header and anti-steal token.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = protocolBodies + storageHeads + text + [frameHeader, frameSplitter]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    static let frameHeader = FuzzTarget("frame-header", seeds: .frames) { bytes in
        var buffer = ByteBuffer(bytes: bytes)
        guard let header = try? FDFSHeader.decode(from: &buffer) else { return nil }
        var again = header.encoded()
        guard let decoded = try? FDFSHeader.decode(from: &again), decoded == header else {
            return "frame-header: \(header) does not survive encoding"
        }
        return nil
    }

    static let frameSplitter = FuzzTarget("frame-splitter", seeds: .frames) { bytes in
        FrameSplitterCheck.run(bytes)
    }

    static let protocolBodies: [FuzzTarget] = [
        .body("group-name-request", .requests([.queryStoreWithGroupOne, .queryStoreWithGroupAll, .listOneGroup]), decode: GroupNameRequest.decode, encode: { $0.encoded() }),
        .body("file-request", .requests([.queryFetchOne, .queryUpdate, .queryFetchAll, .deleteFile, .getMetadata, .queryFileInfo]), decode: FileRequest.decode, encode: { $0.encoded() }),
        .body("list-storage-request", .requests([.listStorage]), decode: ListStorageRequest.decode, encode: { $0.encoded() }),
        .body("download-request", .requests([.downloadFile]), decode: DownloadRequest.decode, encode: { $0.encoded() }),
        .body("set-metadata-request", .requests([.setMetadata]), decode: SetMetadataRequest.decode),
        .body("truncate-request", .requests([.truncateFile]), decode: TruncateRequest.decode, encode: { $0.encoded() }),
        .body("metadata", .responses([.getMetadata]), decode: { FDFSMetadata.decode($0) }),
        .body("file-info", .responses([.queryFileInfo]), decode: FileInfo.decode),
        .body("store-target", .responses([.queryStoreWithoutGroupOne, .queryStoreWithGroupOne]), decode: StoreTarget.decode),
        .body("store-targets", .responses([.queryStoreWithoutGroupAll, .queryStoreWithGroupAll]), decode: StoreTargets.decode),
        .body("fetch-targets", .responses([.queryFetchOne, .queryFetchAll, .queryUpdate]), decode: FetchTargets.decode),
        .body("group-stat-list", .responses([.listAllGroups, .listOneGroup]), decode: GroupStat.decodeList),
        .body("storage-stat-list", .responses([.listStorage]), decode: StorageStat.decodeList),
        .body("storage-brief-list", .responses([.storageJoin, .storageBeat, .storageSyncDestQuery]), decode: StorageBrief.decodeList),
        .body("storage-join", .requests([.storageJoin]), decode: StorageJoinRequest.decode, encode: { $0.encoded() }),
        .body("storage-join-response", .responses([.storageJoin]), decode: StorageJoinResponse.decode),
        .body("storage-beat", .requests([.storageBeat]), decode: StorageBeatRequest.decode),
        .body("disk-usage-report", .requests([.storageReportDiskUsage]), decode: StorageDiskUsageReport.decode, encode: { $0.encoded() }),
        .body("sync-report", .requests([.storageSyncReport]), decode: StorageSyncReport.decode),
        .body("tracker-beat-response", .responses([.storageBeat]), decode: TrackerBeatResponse.decode),
        .body("sync-source", .responses([.storageSyncSourceRequest]), decode: StorageSyncSource.decodeOptional),
        .body("sync-source-request", .requests([.storageSyncSourceRequest]), decode: StorageSyncSourceRequest.decode),
        .body("report-status-request", .requests([.storageReportStatus]), decode: StorageReportStatusRequest.decode),
        .body("change-status-request", .requests([.storageChangeStatus]), decode: StorageChangeStatusRequest.decode),
        .body("replica-change-request", .requests([.storageReplicaChange]), decode: StorageReplicaChangeRequest.decode),
        .body("tracker-parameters", .responses([.storageParameterRequest]), decode: { TrackerParameters.decode($0) }),
        .body("get-my-ip-request", .requests([.storageGetMyIP]), decode: StorageGetMyIPRequest.decode),
        .body("changelog-request", .requests([.storageChangelogRequest]), decode: StorageChangelogRequest.decode),
        .body("delete-storage-request", .requests([.deleteStorage]), decode: DeleteStorageRequest.decode, encode: { $0.encoded() }),
        .body("delete-group-request", .requests([.deleteGroup]), decode: DeleteGroupRequest.decode, encode: { $0.encoded() }),
        .body("report-server-id", .requests([.reportServerID]), decode: ReportServerIDRequest.decode),
        .body("sync-delete", .requests([.syncDeleteFile]), decode: SyncDeleteRequest.decode),
        .body("sync-link", .requests([.syncCreateLink]), decode: SyncLinkRequest.decode),
        .body("sync-truncate", .requests([.syncTruncateFile]), decode: SyncTruncateRequest.decode),
        .body("sync-rename", .requests([.syncRenameFile]), decode: SyncRenameRequest.decode),
    ]

    static let storageHeads: [FuzzTarget] = [
        .head("upload-head", [.uploadFile, .uploadAppenderFile]) { head, length in try UploadRequestHead.decode(head, bodyLength: length) },
        .head("upload-slave-head", [.uploadSlaveFile]) { head, length in try UploadSlaveRequestHead.decode(&head, bodyLength: length) },
        .head("append-head", [.appendFile]) { head, length in try AppendRequestHead.decode(&head, bodyLength: length) },
        .head("modify-head", [.modifyFile]) { head, length in try ModifyRequestHead.decode(&head, bodyLength: length) },
        .head("sync-file-head", [.syncCreateFile, .syncUpdateFile, .syncAppendFile]) { head, length in
            try SyncFileHead.decode(&head, bodyLength: length, contentFollows: length % 2 == 0)
        },
        .head("sync-modify-head", [.syncModifyFile]) { head, length in try SyncModifyHead.decode(&head, bodyLength: length) },
    ]

    static let sampleIDs = [
        "group1/M00/00/2A/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg",
        "group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt",
        "group2/M01/0A/FF/fwAAAmsBc0WEAAAAAAAAAAAAAAA.bin",
    ]

    static let text: [FuzzTarget] = [
        .text("file-id", samples: sampleIDs + ["group1/M00/00/00/../../etc/passwd", "nogroup"]) { text in
            guard let id = try? FileID(text) else { return nil }
            guard let again = try? FileID(id.description), again == id else { return "file-id: '\(text)' parses as \(id), which does not parse back" }
            if id.description.contains("..") || id.description.contains("//") { return "file-id: '\(text)' accepted with a path escape" }
            return nil
        },
        .text("generated-name", samples: sampleIDs.map { String($0.dropFirst(16).prefix(27)) }) { text in
            guard let name = try? GeneratedName(encoded: text) else { return nil }
            guard let again = try? GeneratedName(encoded: name.encoded), again.encoded == name.encoded else {
                return "generated-name: '\(text)' does not survive encoding"
            }
            return nil
        },
        .text("base64", samples: ["wKgz6lnduTeAMdrcAAEoRmXZPp8", "fwAAAmsBc0WALnffAAAADg4Qul0"]) { text in
            guard let bytes = FDFSBase64.decode(text) else { return nil }
            guard FDFSBase64.decode(FDFSBase64.encode(bytes)) == bytes else { return "base64: '\(text)' does not survive encoding" }
            return nil
        },
        .text("config", samples: ["port = 22122\nbase_path = /tmp\n[section]\nkey=value\n", "#include other.conf\nx = 1K\n"]) { text in
            _ = try? FDFSConfig(text: text, loader: { _ in "" })
            return nil
        },
        .text("size", samples: ["1K", "16M", "2G", "-1", "99999999999999999999T"]) { text in
            _ = FDFSConfig.parseSize(text)
            return nil
        },
        .text("server-address", samples: ["127.0.0.1:22122", "[::1]:23000", "10.0.0.1,192.168.0.1:22122"]) { text in
            _ = try? ServerAddress(parsing: text, defaultPort: 22122)
            return nil
        },
        .text("allow-hosts", samples: ["127.0.0.1", "10.0.[1-20].1", "192.168.0.0/16", "*"]) { text in
            _ = try? AllowHosts(values: text.split(separator: "\n").map(String.init), resolve: { _ in [] })
            return nil
        },
        .text("http-target", samples: ["/group1/M00/00/2A/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg?token=abc&ts=1", "/M00/00/00/a%2e%2e/b?filename=%00", "http://h:1/x?a=%zz&b=+"]) { text in
            guard let target = HTTPRequestParsing.target(text) else { return nil }
            if target.query.keys.contains(where: { $0.unicodeScalars.contains { $0.value < 0x20 } }) || target.query.values.contains(where: { $0.unicodeScalars.contains { $0.value < 0x20 } }) {
                return "http-target: '\(text)' kept a control character in its query"
            }
            return nil
        },
        .text("http-range", samples: ["bytes=0-99", "bytes=-5", "bytes=10-", "bytes=1-2,3-4", "bytes=99999999999999999999-", "bytes=-9223372036854775808"]) { text in
            for size: Int64 in [0, 1, 1000, Int64.max] {
                if case .range(let start, let end) = HTTPRequestParsing.range(text, size: size), !(0 <= start && start <= end && end < size) {
                    return "http-range: '\(text)' gives \(start)-\(end) outside a \(size)-byte file"
                }
            }
            return nil
        },
        .text("anti-steal-token", samples: ["0123456789abcdef0123456789abcdef 1700000000", "x -1", " 9223372036854775807", "0123456789abcdef0123456789abcdef -9223372036854775808"]) { text in
            let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let token = parts[0], timestamp = Int64(parts.count > 1 ? parts[1] : "") ?? 0
            let name = "M00/00/2A/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg", secret = "FastDFS1234567890", now: Int64 = 1_700_000_000
            guard AntiStealToken.check(token: token, timestamp: timestamp, remoteFilename: name, secret: secret, ttl: 900, now: now) == nil else { return nil }
            if token.lowercased() != AntiStealToken.make(remoteFilename: name, secret: secret, timestamp: timestamp) { return "anti-steal-token: '\(text)' accepted without being the file's token" }
            return nil
        },
    ]
}
