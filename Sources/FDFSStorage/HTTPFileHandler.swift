import FDFSProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Serves one HTTP connection's requests (reference §7.1 – §7.4). Runs on the event loop; the
/// file work (`stat`, `open`, `fstat`) runs on the storage's file I/O threads and the request
/// goes on back on the event loop, and bodies go out as `FileRegion`s (sendfile). NIOHTTP1's
/// pipelining handler holds the next request until this one's response has ended.
final class HTTPFileHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let context: StorageContext
    private var request: HTTPRequestHead?

    init(context: StorageContext) { self.context = context }

    func channelRead(context channelContext: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            serve(head, channelContext)
        }
    }

    private func serve(_ head: HTTPRequestHead, _ channelContext: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive
        guard head.method == .GET || head.method == .HEAD else {
            respond(channelContext, head, status: .methodNotAllowed, extra: [("Allow", "GET, HEAD")], keepAlive: keepAlive)
            return
        }
        let configuration = context.configuration
        guard let target = HTTPRequestParsing.target(head.uri) else {
            respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
            return
        }
        // `/group/Mxx/...` or `/Mxx/...` for the local group.
        var path = Substring(target.path)
        while path.hasPrefix("/") { path = path.dropFirst() }
        let group: String, remote: String
        if path.count >= 4, path.hasPrefix("M"), path.dropFirst(3).first == "/", path.dropFirst().prefix(2).allSatisfy(\.isHexDigit) {
            group = configuration.group
            remote = String(path)
        } else if let slash = path.firstIndex(of: "/") {
            group = String(path[..<slash])
            remote = String(path[path.index(after: slash)...])
        } else {
            respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
            return
        }
        guard target.path.utf8.count >= 16, remote.utf8.count >= 22, let id = try? FileID(group: group, remoteFilename: remote),
              group != configuration.group || id.storePathIndex < configuration.storePaths.count
        else {
            respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
            return
        }

        if let antiSteal = configuration.antiSteal {
            guard let token = target.query["token"], let tsText = target.query["ts"], let ts = Int64(tsText) else {
                respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
                return
            }
            if let why = AntiStealToken.check(token: token, timestamp: ts, remoteFilename: id.remoteFilename, secret: antiSteal.secretKey, ttl: antiSteal.tokenTTL, now: now()) {
                context.logger.info("HTTP \(head.uri): \(why)")
                if let failFile = antiSteal.checkFailFile {
                    openThenSend(channelContext, head, path: failFile, checkFirst: false, name: failFile, lastModified: nil, filename: nil, keepAlive: keepAlive) {
                        $0.respond(channelContext, head, status: .notFound, keepAlive: keepAlive)
                    }
                } else {
                    respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
                }
                return
            }
        }

        let lastModified: Int64? = id.kind == .normal ? Int64(id.generated.timestamp) : nil
        if let since = head.headers.first(name: "If-Modified-Since"), let lastModified, since == Self.httpDate(lastModified) {
            respond(channelContext, head, status: .notModified, extra: [("Last-Modified", since)], keepAlive: keepAlive)
            return
        }

        let local: String? = group == configuration.group ? (try? context.store.localPath(id)) : nil
        guard let local else {
            notHere(channelContext, head, id: id, group: group, target: target, keepAlive: keepAlive)
            return
        }
        openThenSend(channelContext, head, path: local, checkFirst: true, name: id.name, lastModified: lastModified, filename: target.query["filename"], keepAlive: keepAlive) {
            $0.notHere(channelContext, head, id: id, group: group, target: target, keepAlive: keepAlive)
        }
    }

    /// A file we do not have (yet): 404 if it never will be here, otherwise a redirect to the
    /// source.
    private func notHere(_ channelContext: ChannelHandlerContext, _ head: HTTPRequestHead, id: FileID, group: String, target: HTTPRequestParsing.Target, keepAlive: Bool) {
        let configuration = context.configuration
        let source = id.generated.source
        let isMine: Bool = {
            guard case .ipv4 = source else { return false }
            return source.description == context.myIP || source.description == configuration.bindAddress
        }()
        let age = now() - Int64(id.generated.timestamp)
        if group == configuration.group && (isMine || (id.generated.timestamp > 0 && age > Int64(context.syncFileMaxDelay))) {
            respond(channelContext, head, status: .notFound, keepAlive: keepAlive)
            return
        }
        if target.query["redirect"] != nil {
            respond(channelContext, head, status: .badRequest, keepAlive: keepAlive)
            return
        }
        guard case .ipv4 = source else {
            respond(channelContext, head, status: .internalServerError, keepAlive: keepAlive)
            return
        }
        let port = channelContext.channel.localAddress?.port ?? configuration.httpPort
        let location = "http://\(source.description)\(port == 80 ? "" : ":\(port)")\(head.uri.hasPrefix("/") ? head.uri : "/" + target.path)\(target.rawQuery == nil ? "?" : "&")redirect=1"
        respond(channelContext, head, status: .found, extra: [("Location", location)], keepAlive: keepAlive)
    }

    /// A response without a file body.
    private func respond(_ channelContext: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus, extra: [(String, String)] = [], keepAlive: Bool) {
        var headers = HTTPHeaders(extra)
        let body = status.code >= 300 && status != .notModified ? "<html><body><h1>\(status.code) \(status.reasonPhrase)</h1></body></html>\n" : ""
        headers.add(name: "Server", value: "fdfs-storaged")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if !body.isEmpty { headers.add(name: "Content-Type", value: "text/html") }
        finish(channelContext, request, HTTPResponseHead(version: request.version, status: status, headers: headers), body: request.method == .HEAD || body.isEmpty ? nil : body, region: nil, handle: nil, keepAlive: keepAlive)
    }

    private func finish(_ channelContext: ChannelHandlerContext, _ request: HTTPRequestHead, _ responseHead: HTTPResponseHead, body: String?, region: FileRegion?, handle: NIOFileHandle?, keepAlive: Bool) {
        var responseHead = responseHead
        if !keepAlive { responseHead.headers.replaceOrAdd(name: "Connection", value: "close") }
        channelContext.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if let body {
            channelContext.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        if let region {
            channelContext.write(wrapOutboundOut(.body(.fileRegion(region))), promise: nil)
        }
        let done = channelContext.writeAndFlush(wrapOutboundOut(.end(nil)))
        let channel = channelContext.channel
        done.whenComplete { _ in
            try? handle?.close()
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    /// What the file I/O threads found at a path.
    private enum Opened: Sendable {
        /// Missing or not a regular file (when checked first).
        case absent
        /// There, but `open` failed.
        case unreadable
        case file(CInt, stat)
    }

    /// Opens `path` (after a `stat` that wants a regular file, when `checkFirst`) on the file
    /// I/O threads, then, back on the event loop, sends it, or calls `absent` when it is
    /// not there. An `open` that fails is a 404; file I/O threads that are stopped, a 500.
    private func openThenSend(
        _ channelContext: ChannelHandlerContext, _ request: HTTPRequestHead, path: String, checkFirst: Bool, name: String,
        lastModified: Int64?, filename: String?, keepAlive: Bool, absent: @escaping (HTTPFileHandler) -> Void
    ) {
        let opened = context.fileIOPool.runIfActive(eventLoop: channelContext.eventLoop) { () -> Opened in
            if checkFirst {
                guard let info = try? statFile(path), isRegular(info) else { return .absent }
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .unreadable }
            var info = stat()
            fstat(fd, &info)
            return .file(fd, info)
        }
        opened.assumeIsolated().whenComplete { result in
            switch result {
            case .success(.absent): absent(self)
            case .success(.unreadable): self.respond(channelContext, request, status: .notFound, keepAlive: keepAlive)
            case let .success(.file(fd, info)):
                self.sendFile(channelContext, request, fd: fd, info: info, name: name, lastModified: lastModified, filename: filename, keepAlive: keepAlive)
            case .failure: self.respond(channelContext, request, status: .internalServerError, keepAlive: keepAlive)
            }
        }
    }

    /// 200 / 206 / 416 for a file opened on disk.
    private func sendFile(_ channelContext: ChannelHandlerContext, _ request: HTTPRequestHead, fd: CInt, info: stat, name: String, lastModified: Int64?, filename: String?, keepAlive: Bool) {
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        let size = Int64(info.st_size)
        let modified = lastModified ?? Int64(info.st_mtim.tv_sec)
        let etag = "\"\(String(modified, radix: 16))-\(String(size, radix: 16))\""
        var headers = HTTPHeaders()
        headers.add(name: "Server", value: "fdfs-storaged")
        headers.add(name: "Content-Type", value: MimeTypes.contentType(forName: name, default: context.configuration.httpDefaultContentType))
        headers.add(name: "Accept-Ranges", value: "bytes")
        headers.add(name: "Last-Modified", value: Self.httpDate(modified))
        headers.add(name: "ETag", value: etag)
        if let filename, !filename.isEmpty {
            let safe = filename.filter { $0 != "\"" && $0 != "\r" && $0 != "\n" && $0 != "\\" }
            headers.add(name: "Content-Disposition", value: "attachment; filename=\"\(safe)\"")
        }
        if let match = request.headers.first(name: "If-None-Match"), match == etag {
            try? handle.close()
            respond(channelContext, request, status: .notModified, extra: [("ETag", etag), ("Last-Modified", Self.httpDate(modified))], keepAlive: keepAlive)
            return
        }
        var status = HTTPResponseStatus.ok
        var start: Int64 = 0, end = size - 1
        if let range = request.headers.first(name: "Range") {
            switch HTTPRequestParsing.range(range, size: size) {
            case let .range(first, last):
                status = .partialContent
                (start, end) = (first, last)
                headers.add(name: "Content-Range", value: "bytes \(first)-\(last)/\(size)")
            case .unsatisfiable:
                try? handle.close()
                respond(channelContext, request, status: .rangeNotSatisfiable, extra: [("Content-Range", "bytes */\(size)")], keepAlive: keepAlive)
                return
            case .ignore:
                break
            }
        }
        let length = max(end - start + 1, 0)
        headers.add(name: "Content-Length", value: String(length))
        let region = request.method == .GET && length > 0 ? FileRegion(fileHandle: handle, readerIndex: Int(start), endIndex: Int(start + length)) : nil
        if request.method == .GET { context.count("download", success: true, bytes: length) }
        finish(channelContext, request, HTTPResponseHead(version: request.version, status: status, headers: headers), body: nil, region: region, handle: handle, keepAlive: keepAlive)
    }


    /// RFC 1123 date, as HTTP headers use.
    static func httpDate(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
