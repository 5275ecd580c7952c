import FDFSTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 exchange over a blocking socket (one request, `Connection: close`).
struct RawHTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

func httpRequest(host: String, port: Int, method: String = "GET", path: String, headers: [String: String] = [:]) throws -> RawHTTPResponse {
    guard case .success(let fd) = connectIPv4(host: host, port: port, receiveTimeout: 10) else { throw TestFailure("cannot connect to \(host):\(port)") }
    defer { close(fd) }
    var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    text += "\r\n"
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if got <= 0 { break }
        data += buffer[0..<got]
    }
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let split = (0..<max(data.count - 3, 0)).first(where: { Array(data[$0..<$0 + 4]) == separator }) else {
        throw TestFailure("no HTTP header in \(data.count) bytes")
    }
    let lines = String(decoding: data[0..<split], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestFailure("bad status line \(lines[0])") }
    var parsed: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return RawHTTPResponse(status: status, headers: parsed, body: Array(data[(split + 4)...]))
}
