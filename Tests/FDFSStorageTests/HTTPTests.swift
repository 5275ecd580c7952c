import FDFSProtocol
import Foundation
import Testing
import enum FDFSTestSupport.Processes
@testable import FDFSStorage

/// The built-in HTTP download server.
@Suite(.serialized) struct HTTPTests {
    static let hello = Array("hello fastdfs\n".utf8)

    @Test func getHeadRangeAndErrors() async throws {
        let node = StorageNode(httpPort: freePort())
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Self.hello, ext: "txt")
        let url = "/\(id.description)"

        let get = try httpRequest(host: node.ip, port: node.httpPort, path: url)
        #expect(get.status == 200 && get.body == Self.hello)
        #expect(get.header("Content-Type") == "text/plain")
        #expect(get.header("Content-Length") == "14")
        #expect(get.header("Accept-Ranges") == "bytes")
        let lastModified = try #require(get.header("Last-Modified"))
        #expect(lastModified == HTTPFileHandler.httpDate(Int64(id.generated.timestamp)))
        #expect(get.header("ETag") != nil)

        let noGroup = try httpRequest(host: node.ip, port: node.httpPort, path: "/" + id.remoteFilename)
        #expect(noGroup.status == 200 && noGroup.body == Self.hello)

        let head = try httpRequest(host: node.ip, port: node.httpPort, method: "HEAD", path: url)
        #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") == "14")

        let range = try httpRequest(host: node.ip, port: node.httpPort, path: url, headers: ["Range": "bytes=3-7"])
        #expect(range.status == 206 && range.body == Array("lo fa".utf8))
        #expect(range.header("Content-Range") == "bytes 3-7/14")
        let suffix = try httpRequest(host: node.ip, port: node.httpPort, path: url, headers: ["Range": "bytes=-4"])
        #expect(suffix.status == 206 && suffix.body == Array("dfs\n".utf8))
        let open = try httpRequest(host: node.ip, port: node.httpPort, path: url, headers: ["Range": "bytes=10-100"])
        #expect(open.status == 206 && open.body == Array("dfs\n".utf8) && open.header("Content-Range") == "bytes 10-13/14")
        let unsatisfiable = try httpRequest(host: node.ip, port: node.httpPort, path: url, headers: ["Range": "bytes=14-"])
        #expect(unsatisfiable.status == 416 && unsatisfiable.header("Content-Range") == "bytes */14")

        let cached = try httpRequest(host: node.ip, port: node.httpPort, path: url, headers: ["If-Modified-Since": lastModified])
        #expect(cached.status == 304 && cached.body.isEmpty)

        let attachment = try httpRequest(host: node.ip, port: node.httpPort, path: url + "?filename=report.txt")
        #expect(attachment.header("Content-Disposition") == "attachment; filename=\"report.txt\"")

        for bad in ["/x", "/group1/M00/../../../etc/passwd", "/group1/M09/00/00/" + id.name, "/group1/M00/00/00/short"] {
            #expect(try httpRequest(host: node.ip, port: node.httpPort, path: bad).status == 400, "\(bad)")
        }

        try await client.delete(id)
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: url).status == 404)

        // A recent file from another member that has not arrived yet: redirect to its source.
        let foreign = GeneratedName(source: .ipv4(127, 0, 0, 9), timestamp: UInt32(Date().timeIntervalSince1970), size: 5, crc32: 1, randomBits: 7)
        let foreignID = try FileID(group: "group1", remoteFilename: "M00/00/00/\(foreign.encoded)123.txt")
        let redirect = try httpRequest(host: node.ip, port: node.httpPort, path: "/\(foreignID.description)")
        #expect(redirect.status == 302)
        #expect(redirect.header("Location") == "http://127.0.0.9:\(node.httpPort)/\(foreignID.description)?redirect=1")
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: "/\(foreignID.description)?redirect=1").status == 400)
        // An old one is simply missing.
        let old = GeneratedName(source: .ipv4(127, 0, 0, 9), timestamp: 1_000_000, size: 5, crc32: 1, randomBits: 7)
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: "/group1/M00/00/00/\(old.encoded)123.txt").status == 404)
    }

    @Test func antiStealToken() async throws {
        let node = StorageNode(httpPort: freePort(), extraConfig: """
            http.anti_steal.check_token = true
            http.anti_steal.secret_key = FastDFS1234567890
            http.anti_steal.token_ttl = 900
            """)
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Self.hello, ext: "txt")
        let ts = Int64(Date().timeIntervalSince1970)
        let token = AntiStealToken.make(remoteFilename: id.remoteFilename, secret: "FastDFS1234567890", timestamp: ts)
        #expect(token.count == 32 && token == token.lowercased())
        let good = try httpRequest(host: node.ip, port: node.httpPort, path: "/\(id.description)?token=\(token)&ts=\(ts)")
        #expect(good.status == 200 && good.body == Self.hello)
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: "/\(id.description)").status == 400)
        let wrong = AntiStealToken.make(remoteFilename: id.remoteFilename, secret: "other", timestamp: ts)
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: "/\(id.description)?token=\(wrong)&ts=\(ts)").status == 400)
        let oldTS = ts - 10_000
        let expired = AntiStealToken.make(remoteFilename: id.remoteFilename, secret: "FastDFS1234567890", timestamp: oldTS)
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: "/\(id.description)?token=\(expired)&ts=\(oldTS)").status == 400)
        // Known answer: md5("M00/00/00/abc" + "secret" + "1") computed independently.
        #expect(AntiStealToken.make(remoteFilename: "M00/00/00/abc", secret: "secret", timestamp: 1) == Self.md5Hex("M00/00/00/abcsecret1"))
    }

    static func md5Hex(_ text: String) -> String {
        let result = (try? Processes.run("/usr/bin/md5sum", [], stdin: Data(text.utf8)))?.stdout ?? ""
        return String(result.prefix(32))
    }
}
