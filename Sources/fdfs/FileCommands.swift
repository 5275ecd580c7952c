import ArgumentParser
import FDFSClient
import FDFSProtocol
import Foundation

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete files.")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "File IDs.") var fileIDs: [String]

    func run() async throws {
        let ids = try fileIDs.map(parseFileID)
        try await cluster.run { client in
            for id in ids { try await client.delete(id) }
        }
        if cluster.json { printJSON(["deleted": ids.map(\.description)]) }
    }
}

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a file's size, creation time, CRC32 and source.")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "File ID.") var fileID: String
    @Flag(help: "Decode the name only; ask no server.") var local = false
    @Option(help: "Ask this storage (HOST:PORT) instead of the one the tracker names: whether a replica has the file yet, and how much of it.")
    var storage: String?
    @Flag(name: .customLong("no-crc"), help: "Do not ask the storage to compute the CRC32 of an appender or slave file (it reads the whole file for it); 0 is printed for those, a normal file's comes from its name.")
    var noCRC = false

    func run() async throws {
        let id = try parseFileID(fileID)
        let endpoint = try storage.map(parseStorage)
        let info = local ? FDFSClient.localFileInfo(id) : try await cluster.run { client in
            if let endpoint { return try await client.fileInfo(id, on: endpoint, computeCRC32: !noCRC) }
            return try await client.fileInfo(id, computeCRC32: !noCRC)
        }
        let kind = "\(id.kind)"
        if cluster.json {
            printJSON([
                "file_id": id.description, "kind": kind, "size": info.size, "create_timestamp": info.createTimestamp,
                "crc32": info.crc32, "source_ip": info.sourceIP,
            ])
            return
        }
        let date = Date(timeIntervalSince1970: TimeInterval(info.createTimestamp))
        print("file id:     \(id)")
        print("kind:        \(kind)")
        print("source ip:   \(info.sourceIP)")
        print("file size:   \(info.size)")
        print("create time: \(ISO8601DateFormatter().string(from: date))")
        print("crc32:       \(String(format: "0x%08X", info.crc32)) (\(info.crc32))")
    }
}

struct Locate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the storages the tracker would serve a file from now (QUERY_FETCH_ALL).")

    @OptionGroup var cluster: ClusterOptions
    @Argument(help: "File ID.") var fileID: String

    func run() async throws {
        let id = try parseFileID(fileID)
        let storages = try await cluster.run { client in try await client.tracker.queryFetchAll(id) }
        if cluster.json {
            printJSON(storages.map { ["ip": $0.ip, "port": $0.port] as [String: Any] })
        } else {
            for storage in storages { print(storage.description) }
        }
    }
}

struct Meta: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Get or set a file's metadata.", subcommands: [Get.self, Set.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print metadata as key=value lines.")
        @OptionGroup var cluster: ClusterOptions
        @Argument(help: "File ID.") var fileID: String

        func run() async throws {
            let id = try parseFileID(fileID)
            let metadata = try await cluster.run { client in try await client.getMetadata(id, missingIsEmpty: true) }
            if cluster.json {
                printJSON(Dictionary(metadata.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }))
            } else {
                for pair in metadata { print("\(pair.name)=\(pair.value)") }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace (or, with --merge, merge) metadata.")
        @OptionGroup var cluster: ClusterOptions
        @Argument(help: "File ID.") var fileID: String
        @Argument(help: "key=value pairs.") var pairs: [String] = []
        @Flag(help: "Merge into the existing metadata instead of replacing it.") var merge = false

        func run() async throws {
            let id = try parseFileID(fileID)
            let metadata = try parseMetadata(pairs)
            try await cluster.run { client in try await client.setMetadata(id, metadata, operation: merge ? .merge : .overwrite) }
            if cluster.json { printJSON(["file_id": id.description, "merged": merge, "count": metadata.count]) }
        }
    }
}

struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show groups and storages, like fdfs_monitor.")

    @OptionGroup var cluster: ClusterOptions
    @Option(help: "Only this group.") var group: String?

    func run() async throws {
        let (groups, storages) = try await cluster.run { client -> ([GroupStat], [String: [StorageStat]]) in
            let groups: [GroupStat]
            if let group { groups = [try await client.tracker.listGroup(group)] } else { groups = try await client.tracker.listGroups() }
            var storages: [String: [StorageStat]] = [:]
            for stat in groups { storages[stat.name] = try await client.tracker.listStorages(group: stat.name) }
            return (groups, storages)
        }
        if cluster.json {
            printJSON(groups.map { stat -> [String: Any] in
                [
                    "group": stat.name, "total_mb": stat.totalMB, "free_mb": stat.freeMB, "reserved_mb": stat.reservedMB,
                    "storage_count": stat.storageCount, "storage_port": stat.storagePort, "store_path_count": stat.storePathCount,
                    "storages": (storages[stat.name] ?? []).map { (s: StorageStat) -> [String: Any] in
                        ["id": s.id, "ip": s.ip, "port": s.storagePort, "status": s.storageStatus?.name ?? "\(s.status)",
                         "version": s.version, "total_mb": s.totalMB, "free_mb": s.freeMB,
                         "upload_count": s.counters.total("upload"), "download_count": s.counters.total("download")]
                    },
                ]
            })
            return
        }
        print("group count: \(groups.count)")
        for (index, stat) in groups.enumerated() {
            print("\nGroup \(index + 1):")
            print("group name = \(stat.name)")
            print("disk total space = \(stat.totalMB) MB")
            print("disk free space = \(stat.freeMB) MB")
            print("storage server count = \(stat.storageCount)")
            print("storage server port = \(stat.storagePort)")
            print("store path count = \(stat.storePathCount)")
            print("subdir count per path = \(stat.subdirCountPerPath)")
            for (number, s) in (storages[stat.name] ?? []).enumerated() {
                print("\n\tStorage \(number + 1):")
                print("\t\tid = \(s.id)")
                print("\t\tip_addr = \(s.ip)  \(s.storageStatus?.name ?? "status \(s.status)")")
                print("\t\tversion = \(s.version)")
                print("\t\ttotal storage = \(s.totalMB) MB")
                print("\t\tfree storage = \(s.freeMB) MB")
                print("\t\tstorage port = \(s.storagePort)")
                print("\t\tsource storage id = \(s.sourceID)")
                print("\t\ttotal_upload_count = \(s.counters.total("upload"))")
                print("\t\tsuccess_upload_count = \(s.counters.success("upload"))")
                print("\t\ttotal_download_count = \(s.counters.total("download"))")
                print("\t\tlast_heart_beat_time = \(s.counters.lastHeartBeatTime)")
                print("\t\tlast_synced_timestamp = \(s.counters.lastSyncedTimestamp)")
            }
        }
    }
}
