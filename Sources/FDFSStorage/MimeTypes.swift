/// Content types by file extension for the HTTP server (the common part of nginx's `mime.types`).
enum MimeTypes {
    static let table: [String: String] = [
        "html": "text/html", "htm": "text/html", "shtml": "text/html", "css": "text/css", "xml": "text/xml",
        "txt": "text/plain", "log": "text/plain", "csv": "text/csv", "md": "text/markdown",
        "gif": "image/gif", "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp",
        "svg": "image/svg+xml", "svgz": "image/svg+xml", "ico": "image/x-icon", "bmp": "image/x-ms-bmp",
        "tif": "image/tiff", "tiff": "image/tiff", "avif": "image/avif",
        "js": "application/javascript", "json": "application/json", "pdf": "application/pdf",
        "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar", "7z": "application/x-7z-compressed",
        "rar": "application/x-rar-compressed", "doc": "application/msword", "xls": "application/vnd.ms-excel",
        "ppt": "application/vnd.ms-powerpoint",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "wasm": "application/wasm", "apk": "application/vnd.android.package-archive", "swf": "application/x-shockwave-flash",
        "mp3": "audio/mpeg", "ogg": "audio/ogg", "m4a": "audio/x-m4a", "wav": "audio/wav",
        "mp4": "video/mp4", "mpeg": "video/mpeg", "mpg": "video/mpeg", "mov": "video/quicktime", "webm": "video/webm",
        "flv": "video/x-flv", "avi": "video/x-msvideo", "wmv": "video/x-ms-wmv", "m3u8": "application/vnd.apple.mpegurl",
        "ts": "video/mp2t", "bin": "application/octet-stream", "exe": "application/octet-stream",
    ]

    /// The extension as the module takes it: the text after the last `.` within the last 6
    /// characters of the name (`fdfs_http_get_file_extension`), looked up case-insensitively.
    static func contentType(forName name: String, default fallback: String) -> String {
        let tail = name.suffix(6)
        guard let dot = tail.lastIndex(of: ".") else { return fallback }
        return table[tail[tail.index(after: dot)...].lowercased()] ?? fallback
    }
}
