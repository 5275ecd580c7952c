import FDFSProtocol
import Foundation
import Testing

/// Percent-decoded HTTP inputs (issue 15 #12): `?filename=%00` or `%0d%0a` made the storage
/// drop the connection without an answer; they are a 400.
@Suite(.serialized) struct HTTPBadInputTests {
    @Test("control characters in decoded query keys and values are answered with 400")
    func controlCharactersGetBadRequest() async throws {
        let node = StorageNode(httpPort: freePort())
        defer { node.destroy() }
        try await node.start()
        try await waitUntil(10, "HTTP to listen") { isListening(host: node.ip, port: node.httpPort) }
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Array("hello".utf8), ext: "txt")
        let path = "/\(id.group)/\(id.remoteFilename)"
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: path + "?filename=ok.txt").status == 200)
        for query in ["filename=%00", "filename=a%0d%0aSet-Cookie:%20x=1", "filename=%0a", "filename=tab%09x", "%00=1", "filename=%7f"] {
            let response = try httpRequest(host: node.ip, port: node.httpPort, path: path + "?" + query)
            #expect(response.status == 400, "?\(query) answered \(response.status)")
        }
        // The storage is still serving.
        #expect(try httpRequest(host: node.ip, port: node.httpPort, path: path).body == Array("hello".utf8))
    }
}
