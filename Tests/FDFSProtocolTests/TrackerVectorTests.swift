import FDFSProtocol
import NIOCore
import FDFSTestSupport
import Testing

/// Client-facing tracker commands (101–107, 90–92, 111, 82) against the captured frames.
@Suite("Tracker vectors")
struct TrackerVectorTests {
    static let commands: Set<Int> = [101, 102, 103, 104, 105, 106, 107, 90, 91, 92, 111, 82]

    /// The request our encoder builds from the values in the annotation, or nil when `cmd` is
    /// not a tracker client command.
    static func encodeRequest(_ request: VectorFrame) throws -> [UInt8]? {
        let a = request.parsed
        let command = FDFSCommand(rawValue: UInt8(request.cmd))
        switch request.cmd {
        case 101, 106, 91, 111, 82:
            return frame(command)
        case 104, 107, 90:
            return frame(command, GroupNameRequest(group: try #require(a.string("group"))).encoded())
        case 102, 103, 105:
            let file = FileRequest(group: try #require(a.string("group")), remoteFilename: try #require(a.string("filename")))
            return frame(command, file.encoded())
        case 92:
            let id = try #require(a.string("storage_id"))
            return frame(command, ListStorageRequest(group: try #require(a.string("group")), storageID: id.isEmpty ? nil : id).encoded())
        default:
            return nil
        }
    }

    @Test("every tracker client command in the vectors has an encoder test")
    func coverage() throws {
        var present = Set<Int>()
        for file in try Vectors.loadAll() {
            for exchange in file.exchanges(Self.commands) {
                present.insert(exchange.request.cmd)
                #expect(try Self.encodeRequest(exchange.request) != nil)
            }
        }
        #expect(present == Self.commands, "commands missing from the vectors: \(Self.commands.subtracting(present).sorted())")
    }

    @Test("requests: our encoder reproduces the captured bytes; the server-side decoders read them back", arguments: Vectors.names)
    func requests(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges(Self.commands) {
            let request = exchange.request
            let expected = try #require(try Self.encodeRequest(request))
            #expect(Hex.encode(expected) == request.hex, "\(name): \(request.label)")
            let a = request.parsed
            switch request.cmd {
            case 104, 107, 90:
                #expect(try GroupNameRequest.decode(request.body).group == a.string("group"))
            case 102, 103, 105:
                let decoded = try FileRequest.decode(request.body)
                #expect(decoded.group == a.string("group") && decoded.remoteFilename == a.string("filename"))
            case 92:
                let decoded = try ListStorageRequest.decode(request.body)
                #expect(decoded.group == a.string("group"))
                #expect((decoded.storageID ?? "") == a.string("storage_id"))
            default:
                #expect(request.pkg_len == 0)
            }
        }
    }

    @Test("QUIT (82) gets no reply; ACTIVE_TEST (111) gets an empty OK", arguments: Vectors.names)
    func controlCommands(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([82, 111]) {
            if exchange.request.cmd == 82 {
                #expect(exchange.response == nil, "\(name): QUIT must not be answered")
            } else if let response = exchange.response {
                #expect(Hex.encode(frame(.response)) == response.hex)
            } else {
                // The one unanswered 111: storage 127.0.0.3 was being restarted (vector 21).
                #expect(name == "21_group1_storage_rejoin" && exchange.request.dst == "127.0.0.3:23000", "\(name): \(exchange.request.label)")
            }
        }
    }

    @Test("QUERY_STORE replies (101/104/106/107) decode to the annotated values and re-encode byte for byte", arguments: Vectors.names)
    func storeReplies(name: String) throws {
        let file = try Vectors.load(name)
        let ipWidth = file.profile.queryIPWidth
        for exchange in file.exchanges([101, 104, 106, 107]) {
            let response = try #require(exchange.response, "\(name): \(exchange.request.label) unanswered")
            if response.status != 0 {
                // 104 for an unknown group: ENOENT, header only.
                #expect(response.status == 2 && response.pkg_len == 0 && exchange.request.parsed.string("group") == "nosuchgroup")
                continue
            }
            let a = response.parsed
            if [101, 104].contains(exchange.request.cmd) {
                let target = try StoreTarget.decode(response.body)
                #expect(a.ipFieldWidth == ipWidth)
                #expect(target.group == a.string("group"))
                #expect(target.storage.ip == a.string("ip"))
                #expect(target.storage.port == a.int("port"))
                #expect(Int(target.storePathIndex) == a.int("store_path_index"))
                if let requested = exchange.request.parsed.string("group") { #expect(target.group == requested) }
                #expect(Vectors.cluster[target.storage.ip]?.group == target.group)
                #expect(Vectors.cluster[target.storage.ip]?.port == target.storage.port)
                #expect(target.encoded(profile: file.profile).bytes == response.bodyBytes)
            } else {
                let targets = try StoreTargets.decode(response.body)
                #expect(targets.group == a.string("group"))
                // Independent read: group[16], N × (ip[IPsz−1] + port int64), path index.
                var raw = RawCursor(response.bodyBytes)
                #expect(raw.text(16) == targets.group)
                let count = (response.pkg_len - 17) / (ipWidth + 8)
                #expect(count * (ipWidth + 8) + 17 == response.pkg_len, "\(name): 106/107 body length \(response.pkg_len)")
                #expect(targets.storages.count == count)
                for storage in targets.storages {
                    #expect(raw.text(ipWidth) == storage.ip)
                    #expect(raw.int64() == Int64(storage.port))
                    #expect(Vectors.cluster[storage.ip]?.group == targets.group)
                    #expect(Vectors.cluster[storage.ip]?.port == storage.port)
                }
                #expect(raw.byte() == targets.storePathIndex && raw.isAtEnd)
                #expect(targets.encoded(profile: file.profile).bytes == response.bodyBytes)
            }
        }
    }

    @Test("QUERY_FETCH/UPDATE replies (102/103/105) decode to the annotated values and re-encode byte for byte", arguments: Vectors.names)
    func fetchReplies(name: String) throws {
        let file = try Vectors.load(name)
        let ipWidth = file.profile.queryIPWidth
        for exchange in file.exchanges([102, 103, 105]) {
            let response = try #require(exchange.response)
            let requestGroup = try #require(exchange.request.parsed.string("group"))
            if response.status != 0 {
                // 102 for an unknown group: EINVAL (the tracker rejects it before looking).
                #expect(response.status == 22 && response.pkg_len == 0 && requestGroup == "nosuchgroup")
                continue
            }
            let a = response.parsed
            let targets = try FetchTargets.decode(response.body)
            #expect(targets.group == a.string("group") && targets.group == requestGroup)
            // The annotation carries the bytes after the group: N × (ip[IPsz−1] + port) in 6.16.
            var raw = RawCursor(try #require(a.bytes("rest(ip+port[+ip...])")))
            var expected: [StorageEndpoint] = []
            while !raw.isAtEnd { expected.append(StorageEndpoint(ip: raw.text(ipWidth), port: Int(raw.int64()))) }
            #expect(targets.storages == expected, "\(name): \(response.label)")
            #expect(exchange.request.cmd == 105 || targets.storages.count == 1)
            for storage in targets.storages {
                #expect(Vectors.cluster[storage.ip]?.group == requestGroup)
                #expect(Vectors.cluster[storage.ip]?.port == storage.port)
            }
            #expect(targets.encoded(profile: file.profile).bytes == response.bodyBytes)
        }
    }

    @Test("a FETCH_ALL reply with two servers also round-trips in the classic layout")
    func fetchAllClassic() throws {
        let file = try Vectors.load("06_tracker_queries")
        let response = try #require(file.exchanges([105]).first?.response)
        let targets = try FetchTargets.decode(response.body)
        #expect(targets.storages.count == 2)
        let classic = targets.encoded(profile: .classic)
        #expect(classic.readableBytes == 39 + 15) // group + ip + port, then ip only
        #expect(try FetchTargets.decode(classic) == targets)
    }
}
