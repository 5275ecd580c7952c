import FDFSProtocol
import class FDFSTestSupport.RawSocket
import Foundation
import Testing

/// Client-supplied text in log lines (issue 15 #10): a newline in a request's group field
/// forged a whole line in the storage log.
@Suite(.serialized) struct LogEscapingTests {
    @Test("a newline in the group field cannot forge a log line; it is logged escaped")
    func controlCharactersAreEscaped() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let forged = "FORGED-LINE-X"
        let group = Array("g\n\(forged)\u{1b}".utf8)
        #expect(group.count == 16)
        let filename = Array("M00/00/00/bad\r\nFORGED-NAME".utf8)
        let body = group + filename
        let socket = try RawSocket(host: node.ip, port: node.port)
        try socket.send(RawSocket.header(bodyLength: Int64(body.count), command: FDFSCommand.deleteFile.rawValue) + body)
        #expect(try socket.readResponse()?.status == FDFSStatus.EINVAL.rawValue)
        try await waitUntil(10, "the escaped group in the log") { node.logs.contains("g\\n\(forged)") }
        let lines = node.logs.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(!lines.contains { $0.hasPrefix(forged) || $0.hasPrefix("FORGED-NAME") }, "forged line in the log:\n\(node.logs)")
        #expect(node.logs.contains("g\\n\(forged)"), "the escaped group is not in the log:\n\(node.logs)")
        #expect(!node.logs.contains("\u{1b}"))
    }
}
