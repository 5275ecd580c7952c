import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing
import FDFSTestSupport

/// The client against loopback servers that replay bytes captured from real FastDFS 6.16.1.
@Suite struct ClientReplayTests {
    /// A tracker answering every store/fetch query with `storage`.
    static func tracker(pointingAt storage: StorageEndpoint, group: String = "group1") async throws -> ReplayServer {
        try await ReplayServer { request in
            switch request.header.command {
            case .queryStoreWithoutGroupOne, .queryStoreWithGroupOne:
                return [.send(responseFrame(body: Array(StoreTarget(group: group, storage: storage, storePathIndex: 0).encoded().readableBytesView)))]
            case .queryFetchOne, .queryUpdate, .queryFetchAll:
                return [.send(responseFrame(body: Array(FetchTargets(group: group, storages: [storage]).encoded().readableBytesView)))]
            default:
                return [.send(responseFrame(status: 22))]
            }
        }
    }

    static func client(_ trackers: [StorageEndpoint], timeout: Int64 = 5) -> FDFSClient {
        FDFSClient(configuration: ClientConfiguration(
            trackers: trackers.map { ServerAddress(host: $0.ip, port: $0.port) },
            connectTimeout: .seconds(2), networkTimeout: .seconds(timeout)))
    }

    @Test func uploadSendsTheCapturedBytesAndReturnsTheCapturedID() async throws {
        let scenario = try Vectors.load("01_upload")
        let uploadRequest = scenario.frames.first { $0.cmd == 11 }!
        let uploadReply = scenario.frames.last { $0.cmd == 100 }!
        let storage = try await ReplayServer { _ in [.send(uploadReply.bytes)] }
        let tracker = try await Self.tracker(pointingAt: storage.endpoint)
        defer { Task { await storage.stop(); await tracker.stop() } }
        let client = Self.client([tracker.endpoint])
        let id = try await client.upload(Array("hello fastdfs\n".utf8), options: UploadOptions(fileExtension: "txt"))
        #expect(id.description == "group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        #expect(storage.requests.first?.frame == uploadRequest.bytes)
        #expect(tracker.requests.first?.frame == scenario.frames[0].bytes)
        await client.shutdown()
    }

    @Test func downloadWholeAndRangeMatchCapturedFrames() async throws {
        for name in ["02_download", "03_download_range"] {
            let scenario = try Vectors.load(name)
            let request = scenario.frames.first { $0.cmd == 14 }!
            let reply = scenario.frames.last { $0.cmd == 100 }!
            let storage = try await ReplayServer { _ in [.send(reply.bytes)] }
            let tracker = try await Self.tracker(pointingAt: storage.endpoint)
            let client = Self.client([tracker.endpoint])
            let decoded = try DownloadRequest.decode(ByteBuffer(bytes: request.bodyBytes))
            let id = try decoded.file.fileID()
            let data = try await client.download(id, offset: decoded.offset, length: decoded.length)
            #expect(Array(data.readableBytesView) == reply.bodyBytes)
            #expect(storage.requests.first?.frame == request.bytes, "\(name): request bytes differ from the capture")
            await client.shutdown()
            await storage.stop()
            await tracker.stop()
        }
    }

    @Test func fileInfoAndMetadataDecodeCapturedReplies() async throws {
        let info = try Vectors.load("04_file_info")
        let infoReply = info.frames.first { $0.cmd == 100 && $0.pkg_len == 40 }!
        let meta = try Vectors.load("05_metadata")
        let metaReply = meta.frames.first { $0.cmd == 100 && $0.annotation.contains("GET_METADATA") }!
        let storage = try await ReplayServer { request in
            request.header.command == .queryFileInfo ? [.send(infoReply.bytes)] : [.send(metaReply.bytes)]
        }
        let tracker = try await Self.tracker(pointingAt: storage.endpoint)
        let client = Self.client([tracker.endpoint])
        let id = try FileID("group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        let fileInfo = try await client.fileInfo(id)
        #expect(fileInfo.size == 14)
        #expect(fileInfo.crc32 == 235_977_309)
        #expect(fileInfo.sourceIP == "127.0.0.2")
        let metadata = try await client.getMetadata(id)
        #expect(metadata["author"] == "swift")
        #expect(metadata["color"] == "red")
        #expect(metadata["size"] == "14")
        await client.shutdown()
        await storage.stop()
        await tracker.stop()
    }

    @Test(arguments: [UInt8(2), 5, 13, 16, 17, 22, 28, 95, 114])
    func everyErrorStatusBecomesANamedError(status: UInt8) async throws {
        let tracker = try await ReplayServer { _ in [.send(responseFrame(status: status))] }
        let client = Self.client([tracker.endpoint])
        do {
            _ = try await client.tracker.queryStore(group: "group1")
            Issue.record("expected status \(status) to fail")
        } catch {
            #expect(error.code == .serverStatus)
            #expect(error.status == FDFSStatus(rawValue: status))
            #expect(error.errno == Int32(status))
            #expect(error.description.contains(FDFSStatus(rawValue: status).name))
            #expect(error.description.contains("QUERY_STORE_WITH_GROUP_ONE"))
            #expect(error.description.contains("127.0.0.1:\(tracker.port)"))
        }
        await client.shutdown()
        await tracker.stop()
    }

    @Test func shortReadAndPeerClosingMidBodyAreErrors() async throws {
        let id = try FileID("group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        // Announces 100 bytes, sends 40, closes.
        let storage = try await ReplayServer { _ in [.send(responseFrame(body: Array(repeating: 7, count: 40), announcedLength: 100)), .close] }
        let client = Self.client([])
        var got = 0
        do {
            try await client.downloadOnce(id, from: storage.endpoint, offset: 0, length: 0) { chunk throws(FDFSClientError) in got += chunk.readableBytes }
            Issue.record("a short body must fail")
        } catch {
            #expect(error.code == .connectionClosed)
        }
        #expect(got == 40)
        // A reply header cut in half.
        let halfHeader = try await ReplayServer { _ in [.send([0, 0, 0]), .close] }
        do {
            _ = try await client.fileInfo(id, on: halfHeader.endpoint)
            Issue.record("a truncated header must fail")
        } catch {
            #expect(error.isTransport)
        }
        await client.shutdown()
        await storage.stop()
        await halfHeader.stop()
    }

    @Test func oversizedLengthFieldIsRefusedWithoutAllocating() async throws {
        // pkg_len of 1 TiB on a reply that should be 40 bytes.
        let tracker = try await ReplayServer { _ in [.send(responseFrame(body: [1, 2, 3], announcedLength: 1 << 40))] }
        let client = Self.client([tracker.endpoint])
        do {
            _ = try await client.tracker.queryStore()
            Issue.record("an oversized reply must fail")
        } catch {
            #expect(error.code == .protocolViolation)
            #expect(error.message.contains("exceeds the limit"))
        }
        // A negative pkg_len is malformed.
        let negative = try await ReplayServer { _ in [.send(responseFrame(announcedLength: -5))] }
        let second = Self.client([negative.endpoint])
        do {
            _ = try await second.tracker.queryStore()
            Issue.record("a negative length must fail")
        } catch {
            #expect(error.code == .protocolViolation)
        }
        await client.shutdown()
        await second.shutdown()
        await tracker.stop()
        await negative.stop()
    }

    @Test func silentServerTimesOut() async throws {
        let tracker = try await ReplayServer { _ in [.stall] }
        let client = Self.client([tracker.endpoint], timeout: 1)
        let start = ContinuousClock.now
        do {
            _ = try await client.tracker.queryStore()
            Issue.record("a silent server must time out")
        } catch {
            #expect(error.code == .timeout)
        }
        #expect(ContinuousClock.now - start < .seconds(5))
        await client.shutdown()
        await tracker.stop()
    }

    @Test func trackerFailoverSkipsADeadTracker() async throws {
        let dead = try await ReplayServer { _ in [] }
        let deadEndpoint = dead.endpoint
        await dead.stop()
        let storage = StorageEndpoint(ip: "127.0.0.9", port: 23000)
        let live = try await Self.tracker(pointingAt: storage)
        let client = Self.client([deadEndpoint, live.endpoint])
        for _ in 0..<4 {
            let target = try await client.tracker.queryStore()
            #expect(target.storage == storage)
        }
        await client.shutdown()
        await live.stop()
    }

    /// Found by Scripts/chaos (tracker-kill): a tracker restarted a moment ago answers ENOENT to
    /// every query until the storages have reported to it again; uploads and downloads failed
    /// although the other tracker knew the group and the file.
    @Test func aTrackerThatAnswersENOENTIsNotFinalWhileAnotherKnows() async throws {
        let restarted = try await ReplayServer { _ in [.send(responseFrame(status: 2))] }
        let storage = StorageEndpoint(ip: "127.0.0.9", port: 23000)
        let live = try await Self.tracker(pointingAt: storage)
        let client = Self.client([restarted.endpoint, live.endpoint])
        let id = try FileID("group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        for _ in 0..<4 {  // the queries start at each tracker in turn
            #expect(try await client.tracker.queryStore(group: "group1").storage == storage)
            #expect(try await client.tracker.queryFetch(id) == storage)
        }
        #expect(restarted.requests.count >= 4, "the restarted tracker was asked first half of the time")
        // ENOENT from every tracker is the answer.
        let nowhere = Self.client([restarted.endpoint, restarted.endpoint])
        await #expect(throws: FDFSClientError.self) { try await nowhere.tracker.queryFetch(id) }
        await client.shutdown()
        await nowhere.shutdown()
        await restarted.stop()
        await live.stop()
    }

    @Test func downloadFailsOverToAnotherReplicaAndResumes() async throws {
        let content = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // The first storage sends half the file and dies.
        let broken = try await ReplayServer { _ in [.send(responseFrame(body: Array(content[..<100_000]), announcedLength: Int64(content.count))), .close] }
        // The second serves whatever range it is asked for.
        let healthy = try await ReplayServer { request in
            guard request.header.command == .downloadFile, let download = try? DownloadRequest.decode(ByteBuffer(bytes: request.body)) else { return [] }
            let start = Int(download.offset)
            let end = download.length == 0 ? content.count : start + Int(download.length)
            return [.send(responseFrame(body: Array(content[start..<end])))]
        }
        let tracker = try await ReplayServer { request in
            switch request.header.command {
            case .queryFetchOne: [.send(responseFrame(body: Array(FetchTargets(group: "group1", storages: [broken.endpoint]).encoded().readableBytesView)))]
            default: [.send(responseFrame(body: Array(FetchTargets(group: "group1", storages: [broken.endpoint, healthy.endpoint]).encoded().readableBytesView)))]
            }
        }
        let client = Self.client([tracker.endpoint])
        let id = try FileID("group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        let data = try await client.download(id)
        #expect(Array(data.readableBytesView) == content)
        let resumed = try DownloadRequest.decode(ByteBuffer(bytes: try #require(healthy.requests.first { $0.header.command == .downloadFile }).body))
        #expect(resumed.offset == 100_000)
        await client.shutdown()
        for server in [broken, healthy, tracker] { await server.stop() }
    }

    @Test func pooledConnectionIsReused() async throws {
        let storage = StorageEndpoint(ip: "127.0.0.9", port: 23000)
        let tracker = try await Self.tracker(pointingAt: storage)
        let client = Self.client([tracker.endpoint])
        for _ in 0..<5 { _ = try await client.tracker.queryStore() }
        #expect(tracker.connections.load(ordering: .relaxed) == 1)
        await client.shutdown()
        // QUIT is sent on shutdown (wait for it to arrive, up to 5 s).
        let quitArrived = Processes.wait(for: 5) { tracker.requests.last?.header.command == .quit }
        #expect(quitArrived)
        await tracker.stop()
    }

    @Test func invalidArgumentsNeverReachTheNetwork() async throws {
        let client = Self.client([StorageEndpoint(ip: "127.0.0.1", port: 1)])
        do {
            _ = try await client.tracker.queryStore(group: "bad/group")
            Issue.record("a bad group must be refused")
        } catch {
            #expect(error.code == .invalidArgument)
        }
        do {
            _ = try await client.upload([1, 2, 3], options: UploadOptions(fileExtension: "a/b"))
            Issue.record("a bad extension must be refused")
        } catch {
            #expect(error.code == .invalidArgument)
        }
        await client.shutdown()
    }
}
