import FDFSProtocol
import Foundation
import NIOCore

/// Why a vector could not be loaded. The message says where we looked, so a missing checkout of
/// the shared reference directory is obvious from the test output.
public struct VectorError: Error, CustomStringConvertible {
    public var description: String
}

/// One captured frame (`*.json` in the vector directory).
public struct VectorFrame: Decodable, Sendable {
    public let conn: Int
    public let src: String
    public let dst: String
    public let t: Double
    public let cmd: Int
    public let status: Int
    public let pkg_len: Int
    public let annotation: String
    public let hex: String

    /// The whole frame (header + body).
    public var bytes: [UInt8] { Hex.decode(hex) }
    /// The body only.
    public var bodyBytes: [UInt8] { Array(bytes.dropFirst(FDFSHeader.size)) }
    public var body: ByteBuffer { ByteBuffer(bytes: bodyBytes) }
    public var isResponse: Bool { cmd == Int(FDFSCommand.response.rawValue) }
    public var parsed: Annotation { Annotation(annotation) }
    /// Host part of `dst` (the server a request went to).
    public var dstHost: String { String(dst[..<dst.lastIndex(of: ":")!]) }
    /// A short label for failure messages.
    public var label: String { "conn#\(conn) cmd=\(cmd) t=\(t) \(annotation.prefix(90))" }
}

/// A request and the response that followed it on the same connection.
public struct Exchange: Sendable {
    public let request: VectorFrame
    public let response: VectorFrame?
}

/// One scenario file.
public struct VectorFile: Sendable {
    public let name: String
    public let title: String
    public let frames: [VectorFrame]

    /// `*_ipv6resp` scenarios use 46-byte IP fields.
    public var ipv6Sized: Bool { name.hasSuffix("_ipv6resp") }
    public var profile: WireProfile { ipv6Sized ? .v6_16IPv6Sized : .v6_16 }

    /// Requests paired with the first later response on the same connection.
    public var exchanges: [Exchange] {
        var result: [Exchange] = []
        for (index, frame) in frames.enumerated() where !frame.isResponse {
            let later = frames[(index + 1)...].first { $0.conn == frame.conn }
            result.append(Exchange(request: frame, response: later?.isResponse == true ? later : nil))
        }
        return result
    }

    public func exchanges(_ commands: Set<Int>) -> [Exchange] {
        exchanges.filter { commands.contains($0.request.cmd) }
    }
}

public enum Vectors {
    /// Every scenario the reference directory is expected to hold (README.md lists them).
    public static let names: [String] = {
        let paired = [
            "01_upload", "02_download", "03_download_range", "04_file_info", "05_metadata",
            "06_tracker_queries", "07_monitor", "07b_list_raw", "08_appender", "09_appender_ops",
            "10_fdfs_test_upload", "11_delete", "20_storage_join_beat",
        ]
        return paired.flatMap { [$0, $0 + "_ipv6resp"] } + [
            "21_group1_storage_rejoin", "22_group1_replication", "23_new_storage_full_sync", "24_delete_storage",
        ]
    }()

    /// The package root: this file is `<root>/Tests/FDFSTestSupport/VectorLoader.swift`.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where we look, in order: `$FDFS_VECTOR_DIR`, then `<root>/../shared/reference/vectors`
    /// (the layout of the main checkout), then `<root>/../../shared/reference/vectors` (a git
    /// worktree one level deeper, such as `/work/wt/<branch>`).
    public static var candidates: [URL] {
        var list: [URL] = []
        if let env = ProcessInfo.processInfo.environment["FDFS_VECTOR_DIR"], !env.isEmpty {
            list.append(URL(fileURLWithPath: env))
        }
        list.append(packageRoot.appendingPathComponent("../shared/reference/vectors").standardizedFileURL)
        list.append(packageRoot.appendingPathComponent("../../shared/reference/vectors").standardizedFileURL)
        return list
    }

    /// The vector directory, or an error naming every place we looked.
    public static func directory(candidates: [URL] = Vectors.candidates) throws -> URL {
        for url in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("README.md").path, isDirectory: &isDirectory) {
                return url
            }
        }
        throw VectorError(description: """
            FastDFS test vectors NOT FOUND. Expected <package root>/../shared/reference/vectors \
            (package root \(packageRoot.path)). Looked in: \(candidates.map(\.path).joined(separator: ", ")). \
            Set FDFS_VECTOR_DIR to override. These tests never skip: restore the vectors.
            """)
    }

    private static let cache = VectorCache()

    /// Loads `<name>.json`.
    public static func load(_ name: String) throws -> VectorFile {
        if let cached = cache.get(name) { return cached }
        let url = try directory().appendingPathComponent(name + ".json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw VectorError(description: "vector file \(url.path) is missing or unreadable")
        }
        struct Raw: Decodable {
            let title: String
            let frames: [VectorFrame]
        }
        let raw: Raw
        do { raw = try JSONDecoder().decode(Raw.self, from: data) } catch {
            throw VectorError(description: "vector file \(url.path) is not valid: \(error)")
        }
        guard !raw.frames.isEmpty else { throw VectorError(description: "vector file \(url.path) has no frames") }
        let file = VectorFile(name: name, title: raw.title, frames: raw.frames)
        cache.set(name, file)
        return file
    }

    public static func loadAll() throws -> [VectorFile] { try names.map(load) }

    /// Which storage serves which group on which port in the captured cluster (README.md).
    public static let cluster: [String: (group: String, port: Int)] = [
        "127.0.0.2": ("group1", 23000), "127.0.0.3": ("group1", 23000),
        "127.0.0.4": ("group2", 23002), "127.0.0.5": ("group1", 23000),
    ]
}

/// Parsed files are shared between tests running in parallel.
private final class VectorCache: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String: VectorFile] = [:]
    public func get(_ name: String) -> VectorFile? { lock.withLock { files[name] } }
    public func set(_ name: String, _ file: VectorFile) { lock.withLock { files[name] = file } }
}

public enum Hex {
    public static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for char in text.utf8 {
            let nibble: UInt8
            switch char {
            case 0x30...0x39: nibble = char - 0x30
            case 0x61...0x66: nibble = char - 0x61 + 10
            case 0x41...0x46: nibble = char - 0x41 + 10
            default: preconditionFailure("bad hex character \(char)")
            }
            if let h = high { out.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        precondition(high == nil, "odd hex length")
        return out
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

extension ByteBuffer {
    public var bytes: [UInt8] { Array(readableBytesView) }
}

/// Encodes a whole frame: header + body, as a client or server would send it.
public func frame(_ command: FDFSCommand, status: UInt8 = 0, _ parts: ByteBuffer...) -> [UInt8] {
    var body = ByteBuffer()
    for var part in parts { body.writeBuffer(&part) }
    var out = FDFSHeader(bodyLength: Int64(body.readableBytes), command: command, status: status).encoded()
    out.writeBuffer(&body)
    return out.bytes
}
