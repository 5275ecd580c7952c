import FDFSProtocol
import Foundation
import NIOCore
import FDFSTestSupport
import Testing

/// The vector directory itself and the framing of every captured frame.
@Suite("Vector files")
struct VectorFileTests {
    @Test("the vector directory exists and holds exactly the documented scenarios")
    func directoryIsComplete() throws {
        let directory = try Vectors.directory()
        let present = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        #expect(Set(present) == Set(Vectors.names), "vector set changed: update Vectors.names")
        for name in Vectors.names {
            let file = try Vectors.load(name)
            #expect(file.title.hasPrefix("##") || !file.title.isEmpty)
        }
    }

    @Test("a missing vector directory is a loud error naming the places searched, not a skip")
    func missingDirectory() {
        let bogus = URL(fileURLWithPath: "/nonexistent/fdfs/vectors")
        do {
            _ = try Vectors.directory(candidates: [bogus])
            Issue.record("a missing directory was accepted")
        } catch {
            let message = String(describing: error)
            #expect(message.contains("NOT FOUND") && message.contains(bogus.path) && message.contains("../shared/reference/vectors"))
        }
    }

    @Test("every frame's header decodes to its cmd/status/pkg_len and re-encodes identically", arguments: Vectors.names)
    func headers(name: String) throws {
        let file = try Vectors.load(name)
        for frame in file.frames {
            let bytes = frame.bytes
            #expect(bytes.count == FDFSHeader.size + frame.pkg_len, "\(frame.label)")
            var buffer = ByteBuffer(bytes: bytes)
            let header = try #require(try FDFSHeader.decode(from: &buffer))
            #expect(header.bodyLength == Int64(frame.pkg_len))
            #expect(Int(header.command.rawValue) == frame.cmd)
            #expect(Int(header.status) == frame.status)
            #expect(buffer.readableBytes == frame.pkg_len)
            #expect(header.encoded().bytes == Array(bytes.prefix(FDFSHeader.size)))
            if let status = frame.parsed.errorStatus {
                #expect(frame.isResponse && frame.status == status && frame.pkg_len == 0, "error replies are header-only: \(frame.label)")
            }
        }
    }

    @Test("a header shorter than 10 bytes is not decoded yet")
    func shortHeader() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 100])
        #expect(try FDFSHeader.decode(from: &buffer) == nil)
        #expect(buffer.readableBytes == 9)
    }
}
