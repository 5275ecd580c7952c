import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Scrapes `/metrics` over a plain TCP socket. With `pieces` > 1 the request head goes out in
/// that many separate writes (the server must wait for the whole head). Returns the status
/// line and the body.
public func scrapeMetrics(host: String, port: Int, path: String = "/metrics", pieces: Int = 1) throws -> (status: String, body: String) {
    let socket = try RawSocket(host: host, port: port, receiveTimeout: 10)
    // No Nagle: each piece leaves as its own segment.
    var one: Int32 = 1
    setsockopt(socket.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    let head = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: fdfs-tests\r\n\r\n".utf8)
    let size = max(1, (head.count + pieces - 1) / max(1, pieces))
    var offset = 0
    while offset < head.count {
        let end = min(head.count, offset + size)
        try socket.send(Array(head[offset..<end]))
        offset = end
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let got = buffer.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, $0.count, 0) }
        if got <= 0 { break }
        response += buffer[0..<got]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw RawSocketError("no HTTP response head in \(text.prefix(200))") }
    let status = String(text[..<split.lowerBound].split(separator: "\r\n").first ?? "")
    return (status, String(text[split.upperBound...]))
}

/// The value of the sample `name` (with `labels` exactly as written inside the braces, e.g.
/// `kind="client"`) in a Prometheus text exposition; nil if absent.
public func metricValue(_ text: String, _ name: String, labels: String? = nil) -> Double? {
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let parts = line.split(separator: " ")
        guard parts.count >= 2 else { continue }
        let series = String(parts[0])
        if let labels {
            guard series == "\(name){\(labels)}" else { continue }
        } else {
            guard series == name || series == "\(name){}" else { continue }
        }
        return Double(parts[1])
    }
    return nil
}
