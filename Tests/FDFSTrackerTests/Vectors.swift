import FDFSProtocol
import Foundation
import NIOCore

/// One captured frame of the shared FastDFS 6.16.1 vectors (`<name>.json`).
struct Frame: Decodable, Sendable {
    let conn: Int
    let src: String
    let dst: String
    let t: Double
    let cmd: Int
    let status: Int
    let annotation: String
    let hex: String

    var bytes: [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for char in hex.utf8 {
            let nibble: UInt8 = char <= 0x39 ? char - 0x30 : (char | 0x20) - 0x61 + 10
            if let h = high { result.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        return result
    }

    var body: ByteBuffer { ByteBuffer(bytes: bytes.dropFirst(FDFSHeader.size)) }
    var header: FDFSHeader {
        var buffer = ByteBuffer(bytes: bytes.prefix(FDFSHeader.size))
        return try! FDFSHeader.decode(from: &buffer)!
    }
    var isResponse: Bool { cmd == 100 }
    var srcIP: String { String(src[..<src.lastIndex(of: ":")!]) }
    var dstIP: String { String(dst[..<dst.lastIndex(of: ":")!]) }
    var dstPort: Int { Int(dst[dst.index(after: dst.lastIndex(of: ":")!)...])! }
    var label: String { "conn#\(conn) t=\(t) \(annotation.prefix(80))" }
}

/// A request and the response that followed it on its connection.
struct Exchange: Sendable {
    let request: Frame
    let response: Frame?
}

struct VectorMissing: Error, CustomStringConvertible {
    var description: String
}

enum Vectors {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `$FDFS_VECTOR_DIR`, else `shared/reference/vectors` beside the checkout (main) or two
    /// levels up (a worktree such as /work/wt/<branch>).
    static func directory() throws -> URL {
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["FDFS_VECTOR_DIR"], !env.isEmpty { candidates.append(URL(fileURLWithPath: env)) }
        candidates.append(packageRoot.appendingPathComponent("../shared/reference/vectors").standardizedFileURL)
        candidates.append(packageRoot.appendingPathComponent("../../shared/reference/vectors").standardizedFileURL)
        for url in candidates where FileManager.default.fileExists(atPath: url.appendingPathComponent("README.md").path) {
            return url
        }
        throw VectorMissing(description: "FastDFS vectors not found; looked in \(candidates.map(\.path)); set FDFS_VECTOR_DIR")
    }

    static func load(_ name: String) throws -> [Frame] {
        struct File: Decodable { let frames: [Frame] }
        let data = try Data(contentsOf: try directory().appendingPathComponent(name + ".json"))
        return try JSONDecoder().decode(File.self, from: data).frames
    }

    static func exchanges(_ name: String) throws -> [Exchange] {
        let frames = try load(name)
        return frames.enumerated().compactMap { index, frame in
            guard !frame.isResponse else { return nil }
            let next = frames[(index + 1)...].first { $0.conn == frame.conn }
            return Exchange(request: frame, response: next?.isResponse == true ? next : nil)
        }
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
}
