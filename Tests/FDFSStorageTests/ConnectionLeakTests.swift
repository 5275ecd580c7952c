import FDFSProtocol
import class FDFSTestSupport.RawSocket
import func FDFSTestSupport.residentKiB
import Foundation
import Testing

/// Connections refused for a bad request must give back everything they held (issue 15 #2:
/// ~65 KB stayed behind per connection that sent an unknown command or ACTIVE_TEST with a body).
@Suite(.serialized) struct ConnectionLeakTests {
    /// Opens `count` connections that each send a frame the storage refuses, reads the refusal
    /// and hangs up.
    func refuse(_ node: StorageNode, count: Int) throws {
        let activeTestWithBody = RawSocket.header(bodyLength: 16, command: FDFSCommand.activeTest.rawValue) + [UInt8](repeating: 7, count: 16)
        let unknownCommand = RawSocket.header(bodyLength: 100, command: 0xEE) + [UInt8](repeating: 9, count: 100)
        for index in 0..<count {
            let socket = try RawSocket(host: node.ip, port: node.port)
            try socket.send(index.isMultiple(of: 2) ? activeTestWithBody : unknownCommand)
            let reply = try socket.readResponse()
            #expect(reply?.status == FDFSStatus.EINVAL.rawValue)
        }
    }

    @Test("5 000 refused requests leave the storage's RSS bounded")
    func refusedRequestsDoNotLeak() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let pid = try #require(node.process?.pid)
        try refuse(node, count: 500)
        let before = try await settledResidentKiB(pid: pid)
        try refuse(node, count: 5000)
        let after = try await settledResidentKiB(pid: pid)
        let growth = after - before
        print("fdfs-storaged RSS before \(before) KiB, after 5000 refused connections \(after) KiB, growth \(growth) KiB")
        #expect(growth < 40 * 1024, "RSS grew by \(growth) KiB over 5000 refused connections")
    }
}
